//! [`Strings`]: a list of strings in one buffer, for tokenizer vocabularies and merges.

use std::fmt;

/// A list of strings kept in one buffer: a 150,000-token vocabulary is two allocations, not
/// 150,000.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Strings {
    text: String,
    /// End of each string in `text`.
    ends: Vec<usize>,
}

impl Strings {
    /// An empty list with room for `n` strings.
    pub fn with_capacity(n: usize) -> Self {
        Strings {
            text: String::new(),
            ends: Vec::with_capacity(n),
        }
    }

    /// Appends `s`.
    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len());
    }

    /// Number of strings.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// String `i`.
    pub fn get(&self, i: usize) -> Option<&str> {
        let start = match i.checked_sub(1) {
            Some(prev) => *self.ends.get(prev)?,
            None => 0,
        };
        self.text.get(start..*self.ends.get(i)?)
    }

    /// The strings in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

impl fmt::Debug for Strings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<S: AsRef<str>> FromIterator<S> for Strings {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Strings {
        let mut out = Strings::default();
        for s in iter {
            out.push(s.as_ref());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_share_one_buffer() {
        let mut s = Strings::with_capacity(3);
        for x in ["", "▁héllo", "", "x"] {
            s.push(x);
        }
        assert_eq!(s.len(), 4);
        assert_eq!(
            (s.get(0), s.get(1), s.get(2), s.get(3)),
            (Some(""), Some("▁héllo"), Some(""), Some("x"))
        );
        assert_eq!(s.get(4), None);
        assert_eq!(format!("{s:?}"), r#"["", "▁héllo", "", "x"]"#);
        assert_eq!(s, Strings::from(vec!["", "▁héllo", "", "x"]));
        assert!(Strings::default().is_empty());
    }
}
