//! Declarative helpers shared by the definitions layer.

/// Declares an *open enum*: a `#[repr(transparent)]` newtype over a wire integer with named
/// constants. Values this crate does not know stay representable (they come off the wire), and
/// `Debug` prints the constant's name when there is one and `Type(0x..)` otherwise.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident($repr:ty) {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        #[repr(transparent)]
        $vis struct $name(pub $repr);

        impl $name {
            $( $(#[$vmeta])* pub const $variant: Self = Self($value); )*

            /// The constant's name, if the value is one this crate knows.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( v if v == $value => Some(stringify!($variant)), )*
                    _ => None,
                }
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, "{}({:#x})", stringify!($name), self.0),
                }
            }
        }

        impl From<$repr> for $name {
            fn from(value: $repr) -> Self {
                Self(value)
            }
        }

        impl From<$name> for $repr {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}
pub(crate) use open_enum;

/// Declares a bit-field word: a `#[repr(transparent)]` newtype over an integer with one named
/// getter and one `with_` builder per single-bit flag, plus `unknown_bits` for bits this crate
/// does not define (so callers can reject or preserve them).
macro_rules! bitfield_word {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident($repr:ty) {
            $( $(#[$fmeta:meta])* $bit:literal => $get:ident / $with:ident, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        #[repr(transparent)]
        $vis struct $name(pub $repr);

        impl $name {
            /// Every bit this crate gives a meaning to.
            pub const KNOWN: $repr = 0 $( | (1 << $bit) )*;

            $(
                $(#[$fmeta])*
                #[must_use]
                pub const fn $get(self) -> bool {
                    self.0 & (1 << $bit) != 0
                }

                #[doc = concat!("Returns a copy with [`", stringify!($get), "`](Self::", stringify!($get), ") set to `on`.")]
                #[must_use]
                pub const fn $with(self, on: bool) -> Self {
                    if on {
                        Self(self.0 | (1 << $bit))
                    } else {
                        Self(self.0 & !(1 << $bit))
                    }
                }
            )*

            /// The bits that are set but have no meaning defined by this crate.
            #[must_use]
            pub const fn unknown_bits(self) -> $repr {
                self.0 & !Self::KNOWN
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                let mut s = f.debug_struct(stringify!($name));
                $( s.field(stringify!($get), &self.$get()); )*
                if self.unknown_bits() != 0 {
                    s.field("unknown_bits", &format_args!("{:#x}", self.unknown_bits()));
                }
                s.finish()
            }
        }
    };
}
pub(crate) use bitfield_word;
