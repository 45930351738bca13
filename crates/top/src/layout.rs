//! How a screen of a given size is shared: which sections get how many lines, and which
//! table columns fit. Pure functions of sizes, so 80×24 and narrower are unit-tested.

/// What a section asks for: it is left out below `min` lines and never given more than
/// `want`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    /// Fewest useful lines (0: may be dropped without losing its place).
    pub min: usize,
    /// Lines it could fill.
    pub want: usize,
}

/// Lines per section: first each section's `min`, in `order` (a section whose minimum no
/// longer fits is dropped), then what is left, in the same order, up to each `want`.
pub fn allocate(height: usize, wants: &[Want], order: &[usize]) -> Vec<usize> {
    let mut got = vec![0; wants.len()];
    let mut left = height;
    for &i in order {
        let w = wants[i];
        if w.min <= left {
            got[i] = w.min;
            left -= w.min;
        }
    }
    for &i in order {
        let w = wants[i];
        if got[i] == 0 && w.min > 0 {
            continue; // dropped
        }
        let more = w.want.saturating_sub(got[i]).min(left);
        got[i] += more;
        left -= more;
    }
    got
}

/// A table column: its width and how readily it goes when the screen is narrow (0 never;
/// higher goes first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Col {
    /// Heading.
    pub title: &'static str,
    /// Width in cells (the first column's is its minimum: it takes what is left).
    pub width: usize,
    /// Drop order: higher numbers are dropped first.
    pub drop: u8,
}

/// Which columns are shown in `width` cells (one cell between columns), and the width the
/// first, flexible column gets.
pub fn fit_columns(width: usize, cols: &[Col]) -> (Vec<bool>, usize) {
    let mut shown = vec![true; cols.len()];
    let total = |shown: &[bool]| -> usize {
        let n = shown.iter().filter(|s| **s).count();
        cols.iter()
            .zip(shown)
            .filter(|(_, s)| **s)
            .map(|(c, _)| c.width)
            .sum::<usize>()
            + n.saturating_sub(1)
    };
    while total(&shown) > width {
        let victim = cols
            .iter()
            .enumerate()
            .filter(|(i, c)| shown[*i] && c.drop > 0)
            .max_by_key(|(i, c)| (c.drop, *i));
        match victim {
            Some((i, _)) => shown[i] = false,
            None => break,
        }
    }
    let first = cols.first().map_or(0, |c| c.width) + width.saturating_sub(total(&shown));
    (shown, first)
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn w(min: usize, want: usize) -> Want {
        Want { min, want }
    }

    #[test]
    fn minimums_first_then_the_rest_in_order() {
        let wants = [w(1, 1), w(2, 6), w(3, 8), w(0, 4)];
        assert_eq!(allocate(24, &wants, &[0, 1, 2, 3]), [1, 6, 8, 4]);
        assert_eq!(allocate(10, &wants, &[0, 2, 1, 3]), [1, 2, 7, 0]);
        // Too small for a minimum: that section goes, the others keep theirs.
        assert_eq!(allocate(5, &wants, &[0, 1, 2, 3]), [1, 4, 0, 0]);
        assert_eq!(allocate(0, &wants, &[0, 1, 2, 3]), [0, 0, 0, 0]);
    }

    #[test]
    fn narrow_screens_drop_columns_by_priority() {
        let cols = [
            Col {
                title: "model",
                width: 10,
                drop: 0,
            },
            Col {
                title: "a",
                width: 8,
                drop: 0,
            },
            Col {
                title: "b",
                width: 8,
                drop: 2,
            },
            Col {
                title: "c",
                width: 8,
                drop: 1,
            },
        ];
        assert_eq!(fit_columns(80, &cols), (vec![true; 4], 10 + 80 - 37));
        assert_eq!(
            fit_columns(36, &cols),
            (vec![true, true, false, true], 10 + 36 - 28)
        );
        assert_eq!(fit_columns(20, &cols), (vec![true, true, false, false], 11));
        // Below the columns that never go, nothing more is dropped.
        assert_eq!(fit_columns(5, &cols).0, [true, true, false, false]);
    }
}
