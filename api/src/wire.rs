//! The wire format of commands: a JSON object whose `type` names the
//! command. This module turns a body into a domain command, or into an
//! error whose `code` and `field` say exactly what was wrong.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use domain::ChildCommand;
use domain::values::{ExclusionReason, LaCode, Name, Upn, Urn};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// The largest body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A JSON object body. Unlike axum's `Json`, every rejection (too large,
/// not JSON, not an object) is an [`ApiError`] problem document.
#[derive(Debug)]
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::BadRequest {
                        code: "unreadable_body",
                        field: None,
                        detail: rejection.body_text(),
                    }
                }
            })?;
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|error| ApiError::BadRequest {
                code: "malformed_json",
                field: None,
                detail: format!("the body is not valid JSON: {error}"),
            })?;
        match value {
            Value::Object(map) => Ok(Self(map)),
            _ => Err(ApiError::BadRequest {
                code: "body_not_object",
                field: None,
                detail: "the body must be a JSON object".to_owned(),
            }),
        }
    }
}

/// Fields whose values are validated on their own first, so an error can
/// name the field (serde's messages for tagged enums cannot).
fn check_field(field: &str, value: &Value) -> Result<(), ApiError> {
    let text = |value: &Value| value.as_str().map(str::to_owned);
    let invalid = |detail: String| ApiError::invalid(format!("invalid_{field}"), field, detail);
    let need_text = || invalid(format!("{field} must be a string"));
    match field {
        "upn" | "new_upn" => {
            let raw = text(value).ok_or_else(need_text)?;
            Upn::parse(&raw)
                .map(|_| ())
                .map_err(|e| invalid(e.to_string()))
        }
        "la_code" => match value {
            Value::Null => Ok(()),
            _ => {
                let raw = text(value).ok_or_else(need_text)?;
                LaCode::parse(&raw)
                    .map(|_| ())
                    .map_err(|e| invalid(e.to_string()))
            }
        },
        "school_urn" | "destination_urn" => match value {
            Value::Null => Ok(()),
            _ => {
                let raw = text(value).ok_or_else(need_text)?;
                Urn::parse(&raw)
                    .map(|_| ())
                    .map_err(|e| invalid(e.to_string()))
            }
        },
        "given_name" | "family_name" => {
            let raw = text(value).ok_or_else(need_text)?;
            Name::parse(&raw)
                .map(|_| ())
                .map_err(|e| invalid(e.to_string()))
        }
        "date_of_birth" | "date" | "since" | "visited_on" | "made_on" | "start" => match value {
            Value::Null => Ok(()),
            _ => {
                let raw = text(value).ok_or_else(need_text)?;
                chrono::NaiveDate::parse_from_str(&raw, "%Y-%m-%d")
                    .map(|_| ())
                    .map_err(|_| invalid(format!("{field} must be a date as YYYY-MM-DD")))
            }
        },
        "reasons" => {
            let items = value
                .as_array()
                .ok_or_else(|| invalid("reasons must be a list of census codes".to_owned()))?;
            for item in items {
                let raw =
                    text(item).ok_or_else(|| invalid("each reason must be a string".to_owned()))?;
                ExclusionReason::parse(&raw).map_err(|e| invalid(e.to_string()))?;
            }
            Ok(())
        }
        "year_group" => match value {
            Value::Null => Ok(()),
            Value::Number(n) if n.as_u64().is_some_and(|year| year <= 14) => Ok(()),
            _ => Err(invalid(
                "year_group must be a number from 0 to 14".to_owned(),
            )),
        },
        _ => Ok(()),
    }
}

/// Parses a command object. `implied_type` is the type a route implies
/// (`RegisterChild` for `POST /children`), which a body may repeat but not
/// contradict.
pub fn parse_command(
    mut body: Map<String, Value>,
    implied_type: Option<&str>,
) -> Result<ChildCommand, ApiError> {
    let kind = match (body.get("type"), implied_type) {
        (None, Some(implied)) => implied.to_owned(),
        (Some(Value::String(given)), Some(implied)) if given != implied => {
            return Err(ApiError::invalid(
                "unknown_command_type",
                "type",
                format!("this endpoint takes {implied}, not {given}"),
            ));
        }
        (Some(Value::String(given)), _) => given.clone(),
        (None, None) => {
            return Err(ApiError::invalid(
                "missing_type",
                "type",
                "the body needs a \"type\" naming the command",
            ));
        }
        (Some(_), _) => {
            return Err(ApiError::invalid(
                "missing_type",
                "type",
                "\"type\" must be a string",
            ));
        }
    };
    if !ChildCommand::NAMES.contains(&kind.as_str()) {
        return Err(ApiError::invalid(
            "unknown_command_type",
            "type",
            format!(
                "unknown command type {kind:?}; known types: {}",
                ChildCommand::NAMES.join(", ")
            ),
        ));
    }
    body.insert("type".to_owned(), Value::String(kind));
    for (field, value) in &body {
        check_field(field, value)?;
    }
    if let Some(Value::Object(corrected)) = body.get("corrected") {
        for (field, value) in corrected {
            let checked = if field == "date" {
                "date"
            } else {
                field.as_str()
            };
            check_field(checked, value)?;
        }
    }
    let value = Value::Object(body.clone());
    serde_json::from_value(value).map_err(|error| explain(&error.to_string(), &body))
}

/// Turns a serde message into a problem naming the field.
fn explain(message: &str, body: &Map<String, Value>) -> ApiError {
    let quoted = |marker: &str| {
        message
            .split_once(marker)
            .and_then(|(_, rest)| rest.split('`').next())
            .map(str::to_owned)
    };
    if let Some(field) = quoted("unknown field `") {
        return ApiError::invalid(
            "unknown_field",
            field.clone(),
            format!("unknown field {field:?}"),
        );
    }
    if let Some(field) = quoted("missing field `") {
        return ApiError::invalid(
            "missing_field",
            field.clone(),
            format!("{field} is required"),
        );
    }
    // "unknown variant `x`" or "invalid type: ... `x`": find the field holding that value.
    let bad = quoted("unknown variant `").or_else(|| quoted("invalid value: string \""));
    let field = bad.and_then(|bad| {
        body.iter()
            .find(|(_, value)| value.as_str() == Some(bad.as_str()))
            .map(|(field, _)| field.clone())
    });
    match field {
        Some(field) => ApiError::invalid(
            format!("invalid_{field}"),
            field.clone(),
            format!("{field}: {message}"),
        ),
        None => ApiError::Unprocessable {
            code: "invalid_value".to_owned(),
            field: None,
            detail: message.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn a_bad_upn_names_the_upn_field() {
        let body = object(serde_json::json!({
            "upn": "B207000016049", "given_name": "A", "family_name": "B",
            "date_of_birth": "2015-01-01", "la_code": "330"
        }));
        let error = parse_command(body, Some("RegisterChild")).expect_err("bad check letter");
        assert_eq!(error.code(), "invalid_upn");
    }

    #[test]
    fn an_unknown_enum_value_names_its_field() {
        let body = object(serde_json::json!({
            "type": "LogContactAttempt", "method": "pigeon", "outcome": "no_answer"
        }));
        let error = parse_command(body, None).expect_err("bad method");
        assert_eq!(error.code(), "invalid_method");
    }

    #[test]
    fn unknown_fields_and_types_are_refused() {
        let body = object(serde_json::json!({"type": "RecordNoAllocation", "colour": "red"}));
        assert_eq!(
            parse_command(body, None).expect_err("extra").code(),
            "unknown_field"
        );
        let body = object(serde_json::json!({"type": "Teleport"}));
        assert_eq!(
            parse_command(body, None).expect_err("type").code(),
            "unknown_command_type"
        );
    }
}
