//! Architecture: paravirt ops and platform setup.

pub mod paravirt;
