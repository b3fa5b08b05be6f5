//! Iceberg's schemas and their JSON (Iceberg table specification, Appendix C): the types of
//! table format v2, struct fields with their ids, lists and maps with their element, key and
//! value ids. Keys a later format adds to a field are kept as read and written back.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// A v2 type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TypeRepr", into = "TypeRepr")]
pub(crate) enum Type {
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Decimal {
        precision: u8,
        scale: u8,
    },
    Date,
    /// Microseconds since midnight.
    Time,
    /// Microseconds since the epoch, no zone.
    Timestamp,
    /// Microseconds since the epoch, UTC.
    TimestampTz,
    String,
    Uuid,
    Fixed(u32),
    Binary,
    Struct(StructType),
    List(ListType),
    Map(MapType),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StructType {
    pub(crate) fields: Vec<NestedField>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NestedField {
    pub(crate) id: i32,
    pub(crate) name: String,
    pub(crate) required: bool,
    #[serde(rename = "type")]
    pub(crate) ty: Type,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) doc: Option<String>,
    /// Keys this code does not use (`initial-default`, `write-default`), kept as read.
    #[serde(flatten)]
    pub(crate) other: BTreeMap<String, Json>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListType {
    pub(crate) element_id: i32,
    pub(crate) element_required: bool,
    pub(crate) element: Box<Type>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MapType {
    pub(crate) key_id: i32,
    pub(crate) key: Box<Type>,
    pub(crate) value_id: i32,
    pub(crate) value_required: bool,
    pub(crate) value: Box<Type>,
}

/// A table schema: a struct with an id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Schema {
    #[serde(rename = "type", default = "struct_tag")]
    tag: String,
    #[serde(rename = "schema-id", default)]
    pub(crate) schema_id: i32,
    #[serde(
        rename = "identifier-field-ids",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub(crate) identifier_field_ids: Vec<i32>,
    pub(crate) fields: Vec<NestedField>,
}

fn struct_tag() -> String {
    "struct".into()
}

impl NestedField {
    pub(crate) fn new(id: i32, name: &str, required: bool, ty: Type) -> NestedField {
        NestedField {
            id,
            name: name.to_string(),
            required,
            ty,
            doc: None,
            other: BTreeMap::new(),
        }
    }
}

impl Schema {
    pub(crate) fn new(schema_id: i32, fields: Vec<NestedField>) -> Schema {
        Schema {
            tag: struct_tag(),
            schema_id,
            identifier_field_ids: Vec::new(),
            fields,
        }
    }

    /// The highest field id in the schema, nested ids included (0 for no fields).
    pub(crate) fn highest_field_id(&self) -> i32 {
        fn of(t: &Type) -> i32 {
            match t {
                Type::Struct(s) => s
                    .fields
                    .iter()
                    .map(|f| f.id.max(of(&f.ty)))
                    .max()
                    .unwrap_or(0),
                Type::List(l) => l.element_id.max(of(&l.element)),
                Type::Map(m) => m.key_id.max(m.value_id).max(of(&m.key)).max(of(&m.value)),
                _ => 0,
            }
        }
        self.fields
            .iter()
            .map(|f| f.id.max(of(&f.ty)))
            .max()
            .unwrap_or(0)
    }

    /// A top-level field by name.
    pub(crate) fn field(&self, name: &str) -> Option<&NestedField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// A field anywhere in the schema by id.
    pub(crate) fn field_by_id(&self, id: i32) -> Option<&NestedField> {
        fn find(fields: &[NestedField], id: i32) -> Option<&NestedField> {
            for f in fields {
                if f.id == id {
                    return Some(f);
                }
                if let Type::Struct(s) = &f.ty
                    && let Some(found) = find(&s.fields, id)
                {
                    return Some(found);
                }
            }
            None
        }
        find(&self.fields, id)
    }
}

impl Type {
    pub(crate) fn is_primitive(&self) -> bool {
        !matches!(self, Type::Struct(_) | Type::List(_) | Type::Map(_))
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Boolean => f.write_str("boolean"),
            Type::Int => f.write_str("int"),
            Type::Long => f.write_str("long"),
            Type::Float => f.write_str("float"),
            Type::Double => f.write_str("double"),
            Type::Decimal { precision, scale } => write!(f, "decimal({precision}, {scale})"),
            Type::Date => f.write_str("date"),
            Type::Time => f.write_str("time"),
            Type::Timestamp => f.write_str("timestamp"),
            Type::TimestampTz => f.write_str("timestamptz"),
            Type::String => f.write_str("string"),
            Type::Uuid => f.write_str("uuid"),
            Type::Fixed(n) => write!(f, "fixed[{n}]"),
            Type::Binary => f.write_str("binary"),
            Type::Struct(_) => f.write_str("struct"),
            Type::List(_) => f.write_str("list"),
            Type::Map(_) => f.write_str("map"),
        }
    }
}

/// How a type is written in JSON: a primitive's name, or a nested type's object.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum TypeRepr {
    Primitive(String),
    Nested(NestedRepr),
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum NestedRepr {
    Struct {
        fields: Vec<NestedField>,
    },
    List {
        #[serde(rename = "element-id")]
        element_id: i32,
        element: Box<Type>,
        #[serde(rename = "element-required")]
        element_required: bool,
    },
    Map {
        #[serde(rename = "key-id")]
        key_id: i32,
        key: Box<Type>,
        #[serde(rename = "value-id")]
        value_id: i32,
        value: Box<Type>,
        #[serde(rename = "value-required")]
        value_required: bool,
    },
}

/// A type name this code cannot write (a v3 type, or a misspelling).
#[derive(Debug, thiserror::Error)]
#[error("unsupported Iceberg type {0:?}")]
pub(crate) struct UnsupportedType(String);

impl TryFrom<TypeRepr> for Type {
    type Error = UnsupportedType;

    fn try_from(r: TypeRepr) -> Result<Type, UnsupportedType> {
        Ok(match r {
            TypeRepr::Primitive(name) => primitive(&name).ok_or(UnsupportedType(name))?,
            TypeRepr::Nested(NestedRepr::Struct { fields }) => Type::Struct(StructType { fields }),
            TypeRepr::Nested(NestedRepr::List {
                element_id,
                element,
                element_required,
            }) => Type::List(ListType {
                element_id,
                element_required,
                element,
            }),
            TypeRepr::Nested(NestedRepr::Map {
                key_id,
                key,
                value_id,
                value,
                value_required,
            }) => Type::Map(MapType {
                key_id,
                key,
                value_id,
                value_required,
                value,
            }),
        })
    }
}

impl From<Type> for TypeRepr {
    fn from(t: Type) -> TypeRepr {
        match t {
            Type::Struct(s) => TypeRepr::Nested(NestedRepr::Struct { fields: s.fields }),
            Type::List(l) => TypeRepr::Nested(NestedRepr::List {
                element_id: l.element_id,
                element: l.element,
                element_required: l.element_required,
            }),
            Type::Map(m) => TypeRepr::Nested(NestedRepr::Map {
                key_id: m.key_id,
                key: m.key,
                value_id: m.value_id,
                value: m.value,
                value_required: m.value_required,
            }),
            // Java writes `decimal(P, S)`; every reader takes it.
            p => TypeRepr::Primitive(p.to_string()),
        }
    }
}

/// A primitive type from its name: `decimal(P,S)` with any spaces, `fixed[L]`.
fn primitive(name: &str) -> Option<Type> {
    Some(match name {
        "boolean" => Type::Boolean,
        "int" => Type::Int,
        "long" => Type::Long,
        "float" => Type::Float,
        "double" => Type::Double,
        "date" => Type::Date,
        "time" => Type::Time,
        "timestamp" => Type::Timestamp,
        "timestamptz" => Type::TimestampTz,
        "string" => Type::String,
        "uuid" => Type::Uuid,
        "binary" => Type::Binary,
        _ => {
            if let Some(len) = name
                .strip_prefix("fixed[")
                .and_then(|r| r.strip_suffix(']'))
            {
                return len.trim().parse().ok().map(Type::Fixed);
            }
            let inner = name.strip_prefix("decimal(")?.strip_suffix(')')?;
            let (p, s) = inner.split_once(',')?;
            let (precision, scale): (u8, u8) = (p.trim().parse().ok()?, s.trim().parse().ok()?);
            if precision == 0 || precision > 38 || scale > precision {
                return None;
            }
            Type::Decimal { precision, scale }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_v2_type_reads_and_writes_as_the_specification_spells_it() {
        let json = serde_json::json!({"type":"struct","schema-id":0,"identifier-field-ids":[1],"fields":[
            {"id":1,"name":"id","required":true,"type":"long"},
            {"id":2,"name":"flag","required":false,"type":"boolean"},
            {"id":3,"name":"i","required":false,"type":"int"},
            {"id":4,"name":"f","required":false,"type":"float"},
            {"id":5,"name":"d","required":false,"type":"double"},
            {"id":6,"name":"amount","required":false,"type":"decimal(10, 2)"},
            {"id":7,"name":"day","required":false,"type":"date"},
            {"id":8,"name":"t","required":false,"type":"time"},
            {"id":9,"name":"ts","required":false,"type":"timestamp"},
            {"id":10,"name":"tstz","required":false,"type":"timestamptz"},
            {"id":11,"name":"s","required":false,"type":"string","doc":"a comment"},
            {"id":12,"name":"u","required":false,"type":"uuid"},
            {"id":13,"name":"bin","required":false,"type":"binary"},
            {"id":14,"name":"fx","required":false,"type":"fixed[16]"},
            {"id":15,"name":"st","required":false,"type":{"type":"struct","fields":[
                {"id":18,"name":"a","required":true,"type":"int"},
                {"id":19,"name":"b","required":false,"type":"string"}]}},
            {"id":16,"name":"tags","required":false,"type":{"type":"list","element-id":20,"element":"string","element-required":false}},
            {"id":17,"name":"attrs","required":false,"type":{"type":"map","key-id":21,"key":"string","value-id":22,"value":"long","value-required":false}}
        ]});
        let schema: Schema = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(schema.highest_field_id(), 22);
        assert_eq!(
            schema.field("amount").unwrap().ty,
            Type::Decimal {
                precision: 10,
                scale: 2
            }
        );
        assert_eq!(schema.field_by_id(19).unwrap().name, "b");
        assert_eq!(serde_json::to_value(&schema).unwrap(), json);
        // The canonical spelling without the space reads too.
        let t: Type = serde_json::from_value(serde_json::json!("decimal(38,0)")).unwrap();
        assert_eq!(
            t,
            Type::Decimal {
                precision: 38,
                scale: 0
            }
        );
    }

    #[test]
    fn types_of_later_formats_and_misspellings_are_refused() {
        for bad in [
            "variant",
            "timestamp_ns",
            "decimal(39,0)",
            "decimal(5,6)",
            "fixed[x]",
            "Long",
        ] {
            assert!(
                serde_json::from_value::<Type>(serde_json::json!(bad)).is_err(),
                "{bad}"
            );
        }
    }
}
