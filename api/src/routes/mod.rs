//! The HTTP routes, one module per area, merged in [`crate::app`].

pub mod children;
pub mod health;
pub mod reports;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The request id set by the request-id layer (`x-request-id`).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .headers
                .get("x-request-id")
                .and_then(|value| value.to_str().ok())
                .unwrap_or("none")
                .to_owned(),
        ))
    }
}

/// A page request: `limit` (1 to 1000, default 100) and an opaque `cursor`.
#[derive(Debug, Clone)]
pub struct Page {
    pub limit: i64,
    pub cursor: Option<String>,
}

impl Page {
    pub fn from_query(limit: Option<i64>, cursor: Option<String>) -> Result<Self, ApiError> {
        let limit = limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::invalid(
                "invalid_limit",
                "limit",
                "limit must be from 1 to 1000",
            ));
        }
        if cursor
            .as_ref()
            .is_some_and(|c| c.is_empty() || c.len() > 100)
        {
            return Err(ApiError::invalid(
                "invalid_cursor",
                "cursor",
                "cursor must be a value returned as next_cursor",
            ));
        }
        Ok(Self { limit, cursor })
    }

    /// Trims the one extra item fetched and returns the next cursor if there was one.
    pub fn next<T>(&self, items: &mut Vec<T>, cursor_of: impl Fn(&T) -> String) -> Option<String> {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        if items.len() > limit {
            items.truncate(limit);
            items.last().map(cursor_of)
        } else {
            None
        }
    }
}

/// Whether the client asked for CSV.
pub fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/csv"))
}

fn csv_field(value: &str) -> String {
    // Quote when needed; prefix a quote to text a spreadsheet would run as a formula.
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// A CSV body with a header row; the next page's cursor goes in a `Link`-like header.
pub fn csv_response(
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
    next_cursor: Option<&str>,
) -> Response {
    let mut body = header.join(",");
    body.push_str("\r\n");
    for row in rows {
        let fields: Vec<String> = row.iter().map(|field| csv_field(field)).collect();
        body.push_str(&fields.join(","));
        body.push_str("\r\n");
    }
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Some(cursor) = next_cursor.and_then(|cursor| HeaderValue::from_str(cursor).ok()) {
        response.headers_mut().insert("x-next-cursor", cursor);
    }
    response
}

/// `Query<T>` whose rejection is a problem document (400 `invalid_query`).
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|query| Self(query.0))
            .map_err(|rejection| ApiError::BadRequest {
                code: "invalid_query",
                field: None,
                detail: rejection.body_text(),
            })
    }
}

/// `Path<T>` whose rejection is a problem document (400 `invalid_path`).
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|path| Self(path.0))
            .map_err(|rejection| ApiError::BadRequest {
                code: "invalid_path",
                field: None,
                detail: rejection.body_text(),
            })
    }
}
