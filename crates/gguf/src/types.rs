//! ggml tensor types: id, name, block size and bytes per block.
//!
//! Transcribed from llama.cpp (the copy infermon's engine setup builds): `enum ggml_type` in
//! `ggml/include/ggml.h` gives the ids, `type_traits` in `ggml/src/ggml.c` the names and block
//! sizes, and the bytes per block are `sizeof(block_xxx)` from `ggml/src/ggml-common.h`,
//! measured by compiling that header. `tests/ggml_source.rs` re-checks ids, names and block
//! sizes against the source when it is on disk.

use std::fmt;

use crate::error::SizeError;

macro_rules! ggml_types {
    ($($variant:ident = $id:literal, $name:literal, $block:literal, $size:literal;)+) => {
        /// A ggml tensor type, as stored in a GGUF tensor info.
        ///
        /// Ids that ggml has removed (4, 5, 31–33, 36–38) have no variant; a tensor using one is
        /// an error naming it (see [`GgmlType::removed_name`]).
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum GgmlType {
            $(
                #[doc = concat!("`", $name, "`: id ", $id, ", ", $block, " elements per block, ",
                    $size, " bytes per block.")]
                $variant = $id,
            )+
        }

        impl GgmlType {
            /// Every type, in id order.
            pub const ALL: &'static [GgmlType] = &[$(GgmlType::$variant),+];

            /// The name ggml gives the type (`"q4_K"`, `"iq2_xxs"`, `"bf16"`).
            pub const fn name(self) -> &'static str {
                match self { $(GgmlType::$variant => $name),+ }
            }

            /// Elements per block (1 for plain types such as `f16`).
            pub const fn block_size(self) -> u64 {
                match self { $(GgmlType::$variant => $block),+ }
            }

            /// Bytes per block.
            pub const fn type_size(self) -> u64 {
                match self { $(GgmlType::$variant => $size),+ }
            }
        }
    };
}

ggml_types! {
    F32 = 0, "f32", 1, 4;
    F16 = 1, "f16", 1, 2;
    Q4_0 = 2, "q4_0", 32, 18;
    Q4_1 = 3, "q4_1", 32, 20;
    Q5_0 = 6, "q5_0", 32, 22;
    Q5_1 = 7, "q5_1", 32, 24;
    Q8_0 = 8, "q8_0", 32, 34;
    Q8_1 = 9, "q8_1", 32, 36;
    Q2_K = 10, "q2_K", 256, 84;
    Q3_K = 11, "q3_K", 256, 110;
    Q4_K = 12, "q4_K", 256, 144;
    Q5_K = 13, "q5_K", 256, 176;
    Q6_K = 14, "q6_K", 256, 210;
    Q8_K = 15, "q8_K", 256, 292;
    IQ2_XXS = 16, "iq2_xxs", 256, 66;
    IQ2_XS = 17, "iq2_xs", 256, 74;
    IQ3_XXS = 18, "iq3_xxs", 256, 98;
    IQ1_S = 19, "iq1_s", 256, 50;
    IQ4_NL = 20, "iq4_nl", 32, 18;
    IQ3_S = 21, "iq3_s", 256, 110;
    IQ2_S = 22, "iq2_s", 256, 82;
    IQ4_XS = 23, "iq4_xs", 256, 136;
    I8 = 24, "i8", 1, 1;
    I16 = 25, "i16", 1, 2;
    I32 = 26, "i32", 1, 4;
    I64 = 27, "i64", 1, 8;
    F64 = 28, "f64", 1, 8;
    IQ1_M = 29, "iq1_m", 256, 56;
    BF16 = 30, "bf16", 1, 2;
    TQ1_0 = 34, "tq1_0", 256, 54;
    TQ2_0 = 35, "tq2_0", 256, 66;
    MXFP4 = 39, "mxfp4", 32, 17;
    NVFP4 = 40, "nvfp4", 64, 36;
    Q1_0 = 41, "q1_0", 128, 18;
    Q2_0 = 42, "q2_0", 64, 18;
}

impl GgmlType {
    /// The type with this id, or `None` for an unknown or removed id.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        Self::ALL.iter().copied().find(|t| t.id() == id)
    }

    /// The type's id in GGUF files and `enum ggml_type`.
    pub const fn id(self) -> u32 {
        self as u32
    }

    /// The type named `name`, ignoring ASCII case (`"q8_0"`, `"Q4_K"`, `"BF16"`), as given to
    /// llama.cpp's `--cache-type-k` / `-ctk` and `--cache-type-v` / `-ctv`.
    pub fn from_name(name: &str) -> Option<GgmlType> {
        Self::ALL
            .iter()
            .copied()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// Whether the type stores blocks of several elements (every `q*`, `iq*`, `tq*`, `mxfp4`,
    /// `nvfp4` type).
    pub const fn is_quantized(self) -> bool {
        self.block_size() > 1
    }

    /// Bytes taken by `n_elements` elements of this type.
    ///
    /// # Errors
    ///
    /// [`SizeError::NotBlockMultiple`] when `n_elements` is not a multiple of the block size,
    /// [`SizeError::Overflow`] when the size does not fit in a `u64`.
    pub fn row_size(self, n_elements: u64) -> Result<u64, SizeError> {
        let block = self.block_size();
        if !n_elements.is_multiple_of(block) {
            return Err(SizeError::NotBlockMultiple {
                ggml_type: self,
                count: n_elements,
                block,
            });
        }
        (n_elements / block)
            .checked_mul(self.type_size())
            .ok_or(SizeError::Overflow { what: "byte size" })
    }

    /// The former name of an id that ggml has removed (`4` → `"q4_2"`, `31` → `"q4_0_4_4"`).
    pub fn removed_name(id: u32) -> Option<&'static str> {
        match id {
            4 => Some("q4_2"),
            5 => Some("q4_3"),
            31 => Some("q4_0_4_4"),
            32 => Some("q4_0_4_8"),
            33 => Some("q4_0_8_8"),
            36 => Some("iq4_nl_4_4"),
            37 => Some("iq4_nl_4_8"),
            38 => Some("iq4_nl_8_8"),
            _ => None,
        }
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_hand_numbers() {
        // q8_0: a f16 scale + 32 i8 = 34 bytes per 32 weights.
        assert_eq!(
            (GgmlType::Q8_0.block_size(), GgmlType::Q8_0.type_size()),
            (32, 34)
        );
        // q4_K: 2 f16 + 12 scale bytes + 128 nibble bytes = 144 bytes per 256 weights.
        assert_eq!(
            (GgmlType::Q4_K.block_size(), GgmlType::Q4_K.type_size()),
            (256, 144)
        );
        assert_eq!(
            (GgmlType::F16.block_size(), GgmlType::F16.type_size()),
            (1, 2)
        );
        // q4_1: two f16 + 16 nibble bytes.
        assert_eq!(GgmlType::Q4_1.type_size(), 20);
        assert_eq!(GgmlType::Q8_0.row_size(4096), Ok(4096 / 32 * 34));
        assert_eq!(GgmlType::Q4_K.row_size(4096), Ok(16 * 144));
        assert_eq!(GgmlType::F16.row_size(3), Ok(6));
        assert_eq!(GgmlType::F32.row_size(0), Ok(0));
    }

    #[test]
    fn row_size_rejects_partial_blocks_and_overflow() {
        assert_eq!(
            GgmlType::Q4_K.row_size(100),
            Err(SizeError::NotBlockMultiple {
                ggml_type: GgmlType::Q4_K,
                count: 100,
                block: 256
            })
        );
        assert_eq!(
            GgmlType::Q4_K.row_size(100).map_err(|e| e.to_string()),
            Err("100 elements is not a multiple of the q4_K block size 256".to_string())
        );
        assert_eq!(
            GgmlType::F64.row_size(u64::MAX),
            Err(SizeError::Overflow { what: "byte size" })
        );
    }

    #[test]
    fn ids_names_and_lookups() {
        assert_eq!(GgmlType::ALL.len(), 35);
        for t in GgmlType::ALL {
            assert_eq!(GgmlType::from_id(t.id()), Some(*t));
            assert_eq!(GgmlType::from_name(t.name()), Some(*t));
            assert_eq!(GgmlType::from_name(&t.name().to_uppercase()), Some(*t));
            assert_eq!(t.is_quantized(), t.block_size() > 1);
        }
        assert_eq!(GgmlType::from_name("Q8_0"), Some(GgmlType::Q8_0));
        assert_eq!(GgmlType::from_name("q4_k"), Some(GgmlType::Q4_K));
        assert_eq!(GgmlType::from_name("q4_2"), None);
        assert_eq!(GgmlType::from_name(""), None);
        for id in [4, 5, 31, 32, 33, 36, 37, 38, 43, 99, u32::MAX] {
            assert_eq!(GgmlType::from_id(id), None, "id {id}");
        }
        assert_eq!(GgmlType::removed_name(31), Some("q4_0_4_4"));
        assert_eq!(GgmlType::removed_name(99), None);
        assert_eq!(GgmlType::IQ2_XXS.to_string(), "iq2_xxs");
        assert_eq!(GgmlType::MXFP4.id(), 39);
    }
}
