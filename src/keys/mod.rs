//! The expression languages of S3 keys, below every module that reads or evaluates them (the
//! configuration checks a prefix, the destination evaluates it): `template`, the prefix with its
//! `!{namespace:value}` expressions, and `timefmt`, Java DateTimeFormatter patterns.

pub(crate) mod template;
pub(crate) mod timefmt;
