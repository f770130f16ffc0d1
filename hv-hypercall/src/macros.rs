//! The two declaration macros the definitions layer is built from: open enums for values that come
//! from the guest (and may be unknown), and bitfield words with named accessors for register-like
//! values (the hypercall input value, MSR contents, CPUID feature words).

/// Declares an *open enum*: a transparent newtype over an integer with named constants, whose
/// `Debug` prints the constant's name when the value is known and the number otherwise.
///
/// Unknown values are representable on purpose: they arrive from guests and hosts, and the code
/// that receives them decides what an unknown value means.
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

            /// Every named constant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// The constant's name, if the value is one this crate knows.
            pub const fn name(self) -> Option<&'static str> {
                $( if self.0 == $value { return Some(stringify!($variant)); } )*
                None
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

/// Declares a *bitfield word*: a transparent newtype over an unsigned integer with a getter and a
/// `with_` builder per named field, a mask of the defined bits, and a `Debug` that prints every
/// field (plus any reserved bits that are set).
///
/// Fields are `getter, builder: type [bit]` for `bool`s and `getter, builder: type [lo..hi]`
/// (half-open) for integers. A builder truncates its value to the field width.
macro_rules! bitfield {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident($repr:ty) {
            $(
                $(#[$fmeta:meta])*
                $get:ident, $set:ident : $fty:ident [ $($range:tt)* ],
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        #[repr(transparent)]
        $vis struct $name(pub $repr);

        impl $name {
            /// The bits some field defines; every other bit is reserved.
            pub const DEFINED: $repr = 0 $( | $crate::macros::bitfield!(@mask $repr; $fty [$($range)*]) )*;

            /// The all-zero value.
            pub const fn new() -> Self {
                Self(0)
            }

            /// The raw word.
            pub const fn into_bits(self) -> $repr {
                self.0
            }

            /// Wraps a raw word.
            pub const fn from_bits(bits: $repr) -> Self {
                Self(bits)
            }

            /// The reserved bits that are set (zero when the value is well formed).
            pub const fn reserved_bits(self) -> $repr {
                self.0 & !Self::DEFINED
            }

            $(
                $crate::macros::bitfield!(@accessors $repr; $(#[$fmeta])* $get, $set : $fty [$($range)*]);
            )*
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                let mut s = f.debug_struct(stringify!($name));
                $( s.field(stringify!($get), &self.$get()); )*
                if self.reserved_bits() != 0 {
                    s.field("reserved_bits", &format_args!("{:#x}", self.reserved_bits()));
                }
                s.finish()
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

    (@mask $repr:ty; bool [$bit:literal]) => {
        (1 as $repr) << $bit
    };
    (@mask $repr:ty; $fty:ident [$lo:literal .. $hi:literal]) => {
        (<$repr>::MAX >> (<$repr>::BITS - ($hi - $lo))) << $lo
    };

    (@accessors $repr:ty; $(#[$fmeta:meta])* $get:ident, $set:ident : bool [$bit:literal]) => {
        $(#[$fmeta])*
        #[inline]
        pub const fn $get(self) -> bool {
            (self.0 >> $bit) & 1 != 0
        }

        #[doc = concat!("Returns a copy with [`", stringify!($get), "`](Self::", stringify!($get), ") set to `value`.")]
        #[inline]
        #[must_use]
        pub const fn $set(self, value: bool) -> Self {
            Self((self.0 & !((1 as $repr) << $bit)) | ((value as $repr) << $bit))
        }
    };
    (@accessors $repr:ty; $(#[$fmeta:meta])* $get:ident, $set:ident : $fty:ident [$lo:literal .. $hi:literal]) => {
        $(#[$fmeta])*
        #[inline]
        pub const fn $get(self) -> $fty {
            ((self.0 >> $lo) & (<$repr>::MAX >> (<$repr>::BITS - ($hi - $lo)))) as $fty
        }

        #[doc = concat!("Returns a copy with [`", stringify!($get), "`](Self::", stringify!($get), ") set to `value` (truncated to ", stringify!($hi), " - ", stringify!($lo), " bits).")]
        #[inline]
        #[must_use]
        pub const fn $set(self, value: $fty) -> Self {
            let mask = (<$repr>::MAX >> (<$repr>::BITS - ($hi - $lo))) << $lo;
            Self((self.0 & !mask) | (((value as $repr) << $lo) & mask))
        }
    };
}
pub(crate) use bitfield;
