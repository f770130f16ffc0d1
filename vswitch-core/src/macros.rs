//! Declarative helpers.

/// Declares an *open enum*: a transparent newtype over a wire integer with named constants.
/// Unknown values stay representable; `Debug` prints the name when one matches.
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
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                $( if self.0 == $value { return f.write_str(stringify!($variant)); } )*
                write!(f, "{}({:#x})", stringify!($name), self.0)
            }
        }
    };
}
pub(crate) use open_enum;
