//! infermon's data model: raw samples as collectors read them, and the one pure derivation of
//! every figure infermon shows from them.
#![deny(missing_docs)]

pub mod raw;
pub mod series;
