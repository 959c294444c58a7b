//! PostgreSQL's types on the driver seam. PostgreSQL types every
//! parameter from its statement (a placeholder compared with a BIGINT is
//! a BIGINT, one given to `substr` an INTEGER), where SQLite takes what it
//! is given: a [`Value`] is bound as the type the server asked for, when
//! it fits, and a column comes back as the [`Value`] of its type.

use bytes::BytesMut;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

use super::value::kind;
use super::{DbError, Value};

type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// A value bound as the parameter's type.
#[derive(Debug)]
pub struct PgParam(pub Value);

fn textual(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    )
}

impl ToSql for PgParam {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match (&self.0, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Int(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Int(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
            (Value::Int(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (Value::Int(i), t) if textual(t) => i.to_string().as_str().to_sql(ty, out),
            (Value::Real(f), &Type::FLOAT8) => f.to_sql(ty, out),
            (Value::Real(f), &Type::FLOAT4) => (*f as f32).to_sql(ty, out),
            (Value::Text(s), t) if textual(t) => s.as_str().to_sql(ty, out),
            (Value::Text(s), &Type::JSON) => {
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            (Value::Text(s), &Type::JSONB) => {
                out.extend_from_slice(&[1]);
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            (Value::Blob(b), &Type::BYTEA) => b.as_slice().to_sql(ty, out),
            (v, ty) => Err(format!("cannot bind {} as {ty}", kind(v)).into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A row's columns as values.
pub fn column_values(row: &tokio_postgres::Row) -> Result<Vec<Value>, DbError> {
    row.columns()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let bad = |e: tokio_postgres::Error| DbError::Column {
                column: c.name().to_string(),
                why: e.to_string(),
            };
            let v = match *c.type_() {
                Type::INT8 => row
                    .try_get::<_, Option<i64>>(i)
                    .map_err(bad)?
                    .map(Value::Int),
                Type::INT4 => row
                    .try_get::<_, Option<i32>>(i)
                    .map_err(bad)?
                    .map(|v| Value::Int(v.into())),
                Type::INT2 => row
                    .try_get::<_, Option<i16>>(i)
                    .map_err(bad)?
                    .map(|v| Value::Int(v.into())),
                Type::OID => row
                    .try_get::<_, Option<u32>>(i)
                    .map_err(bad)?
                    .map(|v| Value::Int(v.into())),
                Type::BOOL => row
                    .try_get::<_, Option<bool>>(i)
                    .map_err(bad)?
                    .map(|v| Value::Int(v.into())),
                Type::FLOAT8 => row
                    .try_get::<_, Option<f64>>(i)
                    .map_err(bad)?
                    .map(Value::Real),
                Type::FLOAT4 => row
                    .try_get::<_, Option<f32>>(i)
                    .map_err(bad)?
                    .map(|v| Value::Real(v.into())),
                Type::BYTEA => row
                    .try_get::<_, Option<Vec<u8>>>(i)
                    .map_err(bad)?
                    .map(Value::Blob),
                ref t if textual(t) => row
                    .try_get::<_, Option<String>>(i)
                    .map_err(bad)?
                    .map(Value::Text),
                ref t => {
                    return Err(DbError::Column {
                        column: c.name().to_string(),
                        why: format!(
                            "type {t} is not one the store reads (cast it to BIGINT or TEXT)"
                        ),
                    })
                }
            };
            Ok(v.unwrap_or(Value::Null))
        })
        .collect()
}
