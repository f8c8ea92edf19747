//! Reading script replies: every shape check returns a typed error, never panics.

use redis::Value;

use crate::error::{Error, Result};

pub fn bytes(value: &Value) -> Result<Vec<u8>> {
    match value {
        Value::BulkString(data) => Ok(data.clone()),
        Value::SimpleString(text) => Ok(text.as_bytes().to_vec()),
        Value::Int(number) => Ok(number.to_string().into_bytes()),
        other => Err(Error::Reply(format!("expected a string, got {other:?}"))),
    }
}

pub fn text(value: &Value) -> Result<String> {
    String::from_utf8(bytes(value)?).map_err(|e| Error::Reply(format!("not UTF-8: {e}")))
}

pub fn items(value: &Value) -> Result<&[Value]> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(Error::Reply(format!("expected an array, got {other:?}"))),
    }
}

pub fn texts(value: &Value) -> Result<Vec<String>> {
    items(value)?.iter().map(text).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_shapes_are_errors() {
        assert!(matches!(text(&Value::Nil), Err(Error::Reply(_))));
        assert!(matches!(items(&Value::Int(1)), Err(Error::Reply(_))));
        assert!(matches!(
            text(&Value::BulkString(vec![0xff])),
            Err(Error::Reply(_))
        ));
        assert_eq!(text(&Value::Int(7)), Ok("7".into()));
    }
}
