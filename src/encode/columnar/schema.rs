//! Hive column types (what a Glue table holds) and the Arrow/Parquet type each one is written
//! as. `parse` reads the Hive spelling: `bigint`, `decimal(10,2)`, `array<struct<a:int>>`, ...

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};

/// The largest decimal precision (Hive's and Parquet's DECIMAL with 16 bytes).
pub(crate) const MAX_DECIMAL_PRECISION: u8 = 38;
/// Nesting deeper than this is refused (array<array<...>> 32 levels down is not a table).
const MAX_TYPE_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HiveType {
    String,
    /// char(n): values longer than n characters are cut to n, as Hive does.
    Char(u32),
    /// varchar(n): values longer than n characters are cut to n, as Hive does.
    Varchar(u32),
    Boolean,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Float,
    Double,
    Decimal {
        precision: u8,
        scale: u8,
    },
    Date,
    Timestamp,
    Binary,
    /// Iceberg's types beyond Hive's (an Iceberg table's columns; never parsed from a Hive
    /// type name): microseconds since midnight,
    Time,
    /// a timestamp in UTC (`timestamptz`),
    TimestampTz,
    /// a UUID (16 bytes, read from its text form),
    Uuid,
    /// `fixed[n]`: exactly n bytes (base64 or hex in the record).
    Fixed(u32),
    Array(Box<HiveType>),
    Map(Box<HiveType>, Box<HiveType>),
    Struct(Vec<(String, HiveType)>),
}

impl HiveType {
    /// Whether the type has no children.
    pub(crate) fn is_primitive(&self) -> bool {
        !matches!(
            self,
            HiveType::Array(_) | HiveType::Map(..) | HiveType::Struct(_)
        )
    }

    /// The Arrow type the column is built as (timestamps in `unit`).
    pub(crate) fn arrow(&self, unit: TimeUnit) -> DataType {
        match self {
            HiveType::String | HiveType::Char(_) | HiveType::Varchar(_) => DataType::Utf8,
            HiveType::Boolean => DataType::Boolean,
            HiveType::TinyInt => DataType::Int8,
            HiveType::SmallInt => DataType::Int16,
            HiveType::Int => DataType::Int32,
            HiveType::BigInt => DataType::Int64,
            HiveType::Float => DataType::Float32,
            HiveType::Double => DataType::Float64,
            HiveType::Decimal { precision, scale } => {
                DataType::Decimal128(*precision, *scale as i8)
            }
            HiveType::Date => DataType::Date32,
            HiveType::Timestamp => DataType::Timestamp(unit, None),
            HiveType::Binary => DataType::Binary,
            HiveType::Time => DataType::Time64(TimeUnit::Microsecond),
            HiveType::TimestampTz => DataType::Timestamp(unit, Some("UTC".into())),
            HiveType::Uuid => DataType::FixedSizeBinary(16),
            HiveType::Fixed(n) => DataType::FixedSizeBinary(*n as i32),
            HiveType::Array(t) => {
                DataType::List(Arc::new(Field::new("element", t.arrow(unit), true)))
            }
            HiveType::Map(k, v) => DataType::Map(
                Arc::new(Field::new(
                    "key_value",
                    DataType::Struct(Fields::from(vec![
                        Field::new("key", k.arrow(unit), false),
                        Field::new("value", v.arrow(unit), true),
                    ])),
                    false,
                )),
                false,
            ),
            HiveType::Struct(fields) => DataType::Struct(
                fields
                    .iter()
                    .map(|(n, t)| Field::new(n, t.arrow(unit), true))
                    .collect(),
            ),
        }
    }
}

impl fmt::Display for HiveType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HiveType::String => f.write_str("string"),
            HiveType::Char(n) => write!(f, "char({n})"),
            HiveType::Varchar(n) => write!(f, "varchar({n})"),
            HiveType::Boolean => f.write_str("boolean"),
            HiveType::TinyInt => f.write_str("tinyint"),
            HiveType::SmallInt => f.write_str("smallint"),
            HiveType::Int => f.write_str("int"),
            HiveType::BigInt => f.write_str("bigint"),
            HiveType::Float => f.write_str("float"),
            HiveType::Double => f.write_str("double"),
            HiveType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            HiveType::Date => f.write_str("date"),
            HiveType::Timestamp => f.write_str("timestamp"),
            HiveType::Binary => f.write_str("binary"),
            HiveType::Time => f.write_str("time"),
            HiveType::TimestampTz => f.write_str("timestamptz"),
            HiveType::Uuid => f.write_str("uuid"),
            HiveType::Fixed(n) => write!(f, "fixed[{n}]"),
            HiveType::Array(t) => write!(f, "array<{t}>"),
            HiveType::Map(k, v) => write!(f, "map<{k},{v}>"),
            HiveType::Struct(fields) => {
                f.write_str("struct<")?;
                for (i, (n, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{n}:{t}")?;
                }
                f.write_str(">")
            }
        }
    }
}

/// One column of the table: a lowercase name (Hive and Glue names are case-insensitive and
/// stored lowercase) and its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: HiveType,
}

/// The Arrow schema of a table, timestamps in `unit`.
pub(crate) fn arrow_schema(columns: &[Column], unit: TimeUnit) -> Schema {
    Schema::new(
        columns
            .iter()
            .map(|c| Field::new(&c.name, c.ty.arrow(unit), true))
            .collect::<Vec<_>>(),
    )
}

/// Why a Hive type does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HiveTypeError {
    #[error("{what} at character {at} of {text:?}")]
    Syntax {
        what: Cow<'static, str>,
        at: usize,
        text: String,
    },
    #[error(
        "unknown type `{name}` in {text:?} (string, char(n), varchar(n), boolean, tinyint, smallint, int, bigint, float, double, decimal(p,s), date, timestamp, binary, array<T>, map<K,V>, struct<name:T,...>)"
    )]
    Unknown { name: String, text: String },
}

/// Parses a Hive type such as `map<string,array<decimal(10,2)>>` (case and spaces ignored).
pub fn parse(text: &str) -> Result<HiveType, HiveTypeError> {
    let mut p = TypeParser {
        s: text.as_bytes(),
        i: 0,
        text,
    };
    let t = p.ty(0)?;
    p.ws();
    if p.i < p.s.len() {
        return Err(p.fail("unexpected text after the type"));
    }
    Ok(t)
}

struct TypeParser<'a> {
    s: &'a [u8],
    i: usize,
    text: &'a str,
}

impl TypeParser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn fail(&self, what: impl Into<Cow<'static, str>>) -> HiveTypeError {
        HiveTypeError::Syntax {
            what: what.into(),
            at: self.i + 1,
            text: self.text.to_string(),
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), HiveTypeError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.fail(format!("expected `{}`", c as char)))
        }
    }

    /// A name: letters, digits and `_`, or any text between backquotes.
    fn ident(&mut self) -> Result<String, HiveTypeError> {
        self.ws();
        if self.eat(b'`') {
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i] != b'`' {
                self.i += 1;
            }
            if self.i >= self.s.len() {
                return Err(self.fail("unclosed `"));
            }
            let name = self.text[start..self.i].to_string();
            self.i += 1;
            return Ok(name);
        }
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        if start == self.i {
            return Err(self.fail("expected a name"));
        }
        Ok(self.text[start..self.i].to_string())
    }

    fn number(&mut self) -> Result<u32, HiveTypeError> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        self.text[start..self.i]
            .parse()
            .map_err(|_| self.fail("expected a number"))
    }

    fn ty(&mut self, depth: usize) -> Result<HiveType, HiveTypeError> {
        if depth > MAX_TYPE_DEPTH {
            return Err(self.fail("types nest too deep"));
        }
        let name = self.ident()?.to_ascii_lowercase();
        Ok(match name.as_str() {
            "string" => HiveType::String,
            "boolean" => HiveType::Boolean,
            "tinyint" => HiveType::TinyInt,
            "smallint" => HiveType::SmallInt,
            "int" | "integer" => HiveType::Int,
            "bigint" => HiveType::BigInt,
            "float" => HiveType::Float,
            "double" => HiveType::Double,
            "date" => HiveType::Date,
            "timestamp" => HiveType::Timestamp,
            "binary" => HiveType::Binary,
            "char" | "varchar" => self.sized_text(&name)?,
            "decimal" | "numeric" => self.decimal()?,
            "array" => {
                self.expect(b'<')?;
                let t = self.ty(depth + 1)?;
                self.expect(b'>')?;
                HiveType::Array(Box::new(t))
            }
            "map" => self.map(depth)?,
            "struct" => self.structure(depth)?,
            other => {
                return Err(HiveTypeError::Unknown {
                    name: other.to_string(),
                    text: self.text.to_string(),
                });
            }
        })
    }

    /// `char(n)` or `varchar(n)`, after its name.
    fn sized_text(&mut self, name: &str) -> Result<HiveType, HiveTypeError> {
        self.expect(b'(')?;
        let n = self.number()?;
        self.expect(b')')?;
        let max = if name == "char" { 255 } else { 65535 };
        if !(1..=max).contains(&n) {
            return Err(self.fail(format!("{name} length must be 1..={max} (got {n})")));
        }
        Ok(if name == "char" {
            HiveType::Char(n)
        } else {
            HiveType::Varchar(n)
        })
    }

    /// `decimal`, `decimal(p)` or `decimal(p,s)`, after its name.
    fn decimal(&mut self) -> Result<HiveType, HiveTypeError> {
        // Hive's default: decimal(10,0).
        let (mut precision, mut scale) = (10, 0);
        if self.eat(b'(') {
            precision = self.number()?;
            scale = if self.eat(b',') { self.number()? } else { 0 };
            self.expect(b')')?;
        }
        if !(1..=u32::from(MAX_DECIMAL_PRECISION)).contains(&precision) {
            return Err(self.fail(format!(
                "decimal precision must be 1..={MAX_DECIMAL_PRECISION} (got {precision})"
            )));
        }
        if scale > precision {
            return Err(self.fail(format!(
                "decimal scale must be at most the precision {precision} (got {scale})"
            )));
        }
        Ok(HiveType::Decimal {
            precision: precision as u8,
            scale: scale as u8,
        })
    }

    /// `map<K,V>` with a primitive key, after its name.
    fn map(&mut self, depth: usize) -> Result<HiveType, HiveTypeError> {
        self.expect(b'<')?;
        let k = self.ty(depth + 1)?;
        if !k.is_primitive() {
            return Err(self.fail(format!("a map key must be a primitive type (got {k})")));
        }
        self.expect(b',')?;
        let v = self.ty(depth + 1)?;
        self.expect(b'>')?;
        Ok(HiveType::Map(Box::new(k), Box::new(v)))
    }

    /// `struct<name:T,...>` (field names unique, case ignored), after its name.
    fn structure(&mut self, depth: usize) -> Result<HiveType, HiveTypeError> {
        self.expect(b'<')?;
        let mut fields: Vec<(String, HiveType)> = Vec::new();
        loop {
            let field = self.ident()?.to_lowercase();
            if fields.iter().any(|(n, _)| *n == field) {
                return Err(self.fail(format!("struct field `{field}` appears twice")));
            }
            self.expect(b':')?;
            let t = self.ty(depth + 1)?;
            fields.push((field, t));
            if !self.eat(b',') {
                break;
            }
        }
        self.expect(b'>')?;
        Ok(HiveType::Struct(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hive_type_parses_and_prints_back() {
        for t in [
            "string",
            "char(3)",
            "varchar(20)",
            "boolean",
            "tinyint",
            "smallint",
            "int",
            "bigint",
            "float",
            "double",
            "decimal(38,9)",
            "date",
            "timestamp",
            "binary",
            "array<int>",
            "map<string,array<decimal(10,2)>>",
            "struct<a:int,b:struct<c:string>,d:map<bigint,string>>",
        ] {
            assert_eq!(parse(t).expect(t).to_string(), t);
        }
        assert_eq!(
            parse(" ARRAY < Struct< A : INT , `b c`:String > > ")
                .expect("spaces")
                .to_string(),
            "array<struct<a:int,b c:string>>"
        );
        assert_eq!(
            parse("decimal").expect("default").to_string(),
            "decimal(10,0)"
        );
        assert_eq!(parse("integer").expect("alias"), HiveType::Int);
    }

    #[test]
    fn bad_types_say_what_is_wrong() {
        let err = |t: &str| parse(t).expect_err(t).to_string();
        assert!(err("strin").contains("unknown type `strin`"));
        assert!(err("decimal(39,2)").contains("precision must be 1..=38"));
        assert!(err("decimal(5,6)").contains("scale must be at most"));
        assert!(err("map<array<int>,int>").contains("map key must be a primitive"));
        assert!(err("array<int").contains("expected `>`"));
        assert!(err("struct<a:int,a:string>").contains("appears twice"));
        assert!(err("int extra").contains("unexpected text"));
        assert!(err("varchar(0)").contains("length must be"));
        let deep = format!("{}int{}", "array<".repeat(40), ">".repeat(40));
        assert!(err(&deep).contains("too deep"));
    }

    #[test]
    fn arrow_types_follow_the_parquet_conventions() {
        let t = parse("map<string,array<int>>").expect("parses");
        let DataType::Map(entries, false) = t.arrow(TimeUnit::Microsecond) else {
            panic!("a map");
        };
        assert_eq!(entries.name(), "key_value");
        let DataType::Struct(kv) = entries.data_type() else {
            panic!("entries are a struct");
        };
        assert_eq!(kv[0].name(), "key");
        assert!(!kv[0].is_nullable());
        assert_eq!(kv[1].name(), "value");
        let DataType::List(item) = kv[1].data_type() else {
            panic!("a list");
        };
        assert_eq!(item.name(), "element");
    }
}
