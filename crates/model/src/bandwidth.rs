//! Peak memory bandwidth of inference devices, by device name: the one table, used by
//! `derive` (an engine's decode memory-bandwidth utilisation) and by `infermon bench`.
//!
//! Peaks are vendor specifications in GB/s (10⁹ bytes/s). A name matches an entry when it
//! contains every one of the entry's words (case-insensitive, split at anything that is not
//! a letter or digit); more specific entries come first. A device not in the table has no
//! peak; nothing is guessed.

/// (words that must all appear in the name, peak GB/s, display name).
const TABLE: &[(&[&str], f64, &str)] = &[
    (&["h200"], 4800.0, "H200"),
    (&["gh200"], 4000.0, "GH200 (96 GB HBM3)"),
    (&["h100", "nvl"], 3900.0, "H100 NVL"),
    (&["h100", "pcie"], 2000.0, "H100 PCIe"),
    (&["h100"], 3350.0, "H100 SXM"),
    (&["a100", "80gb", "pcie"], 1935.0, "A100 80GB PCIe"),
    (&["a100", "80gb"], 2039.0, "A100 80GB SXM"),
    (&["a100"], 1555.0, "A100 40GB"),
    (&["l40s"], 864.0, "L40S"),
    (&["rtx", "5090"], 1792.0, "RTX 5090"),
    (&["rtx", "4090"], 1008.0, "RTX 4090"),
    (&["rtx", "3090", "ti"], 1008.0, "RTX 3090 Ti"),
    (&["rtx", "3090"], 936.0, "RTX 3090"),
    (&["rtx", "6000", "ada"], 960.0, "RTX 6000 Ada"),
    (&["gb10"], 273.0, "GB10 (DGX Spark)"),
    (&["mi300x"], 5300.0, "Instinct MI300X"),
    (&["7900", "xtx"], 960.0, "Radeon RX 7900 XTX"),
    (&["8060s"], 256.0, "Strix Halo (Radeon 8060S)"),
    (&["strix", "halo"], 256.0, "Strix Halo"),
    (&["ryzen", "ai", "max"], 256.0, "Strix Halo"),
    (&["m1", "ultra"], 800.0, "Apple M1 Ultra"),
    (&["m2", "ultra"], 800.0, "Apple M2 Ultra"),
    (&["m3", "ultra"], 819.0, "Apple M3 Ultra"),
    (&["m3", "max"], 400.0, "Apple M3 Max"),
    (&["m4", "max"], 546.0, "Apple M4 Max"),
    (&["m4", "pro"], 273.0, "Apple M4 Pro"),
    (&["apple", "m4"], 120.0, "Apple M4"),
];

/// The peak bandwidth (GB/s) and table name of a device called `name`, if the table has it.
pub fn lookup(name: &str) -> Option<(f64, &'static str)> {
    let lower = name.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    TABLE
        .iter()
        .find(|(need, _, _)| need.iter().all(|n| words.contains(n)))
        .map(|(_, gbs, display)| (*gbs, *display))
}

/// The first of `names` that the table knows: (that name, peak GB/s, table name).
pub fn first_known<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Option<(&'a str, f64, &'static str)> {
    names
        .into_iter()
        .find_map(|n| lookup(n).map(|(gbs, display)| (n, gbs, display)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_most_specific_entry() {
        assert_eq!(lookup("NVIDIA H100 80GB HBM3").map(|x| x.0), Some(3350.0));
        assert_eq!(lookup("NVIDIA H100 PCIe").map(|x| x.0), Some(2000.0));
        assert_eq!(lookup("NVIDIA H100 NVL").map(|x| x.0), Some(3900.0));
        assert_eq!(lookup("NVIDIA H200").map(|x| x.0), Some(4800.0));
        assert_eq!(lookup("NVIDIA A100-SXM4-80GB").map(|x| x.0), Some(2039.0));
        assert_eq!(lookup("NVIDIA GeForce RTX 3090").map(|x| x.0), Some(936.0));
        assert_eq!(lookup("NVIDIA GeForce RTX 4090").map(|x| x.0), Some(1008.0));
        assert_eq!(lookup("Apple M4 Max").map(|x| x.0), Some(546.0));
        assert_eq!(
            lookup("AMD Radeon 8060S Graphics").map(|x| x.0),
            Some(256.0)
        );
        assert_eq!(lookup("Tesla T4"), None);
        assert_eq!(lookup("Apple M4").map(|x| x.0), Some(120.0));
        assert_eq!(lookup("Apple M3"), None);
    }

    #[test]
    fn the_first_known_name_wins() {
        let names = ["Tesla T4", "NVIDIA GeForce RTX 4090", "NVIDIA H200"];
        assert_eq!(
            first_known(names),
            Some(("NVIDIA GeForce RTX 4090", 1008.0, "RTX 4090"))
        );
        assert_eq!(first_known(["Tesla T4"]), None);
        assert_eq!(first_known(std::iter::empty()), None);
    }
}
