//! One error type for the HTTP API, rendered as RFC 9457
//! `application/problem+json` with a stable `code`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::CaseError;
use projections::StoreError;
use serde::Serialize;

/// A problem document, as every error response carries it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A relative URI naming the problem type: `/problems/{code}`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable and machine-readable; documented in docs/api.md.
    pub code: String,
    /// The request field at fault, where there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Returns 401 Unauthorized: no token, or an unknown or revoked one.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// Returns 403 Forbidden: the caller's role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Returns 404 Not Found; says nothing about whether the child exists.
    #[error("no such resource in your scope")]
    NotFound,
    /// Returns 400 Bad Request: the body is not JSON, or a header is malformed.
    #[error("{detail}")]
    BadRequest {
        code: &'static str,
        field: Option<String>,
        detail: String,
    },
    /// Returns 422 Unprocessable Content: well-formed, but a value or a rule refused it.
    #[error("{detail}")]
    Unprocessable {
        code: String,
        field: Option<String>,
        detail: String,
    },
    /// Returns 409 Conflict.
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// Returns 413 Content Too Large.
    #[error("the request body is larger than 64 KiB")]
    PayloadTooLarge,
    /// Returns 406 Not Acceptable.
    #[error("this resource is available as application/json{0}")]
    NotAcceptable(&'static str),
    /// Returns 500 Internal Server Error; the detail is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

impl ApiError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> String {
        match self {
            Self::Unauthorized => "unauthorized".to_owned(),
            Self::Forbidden(_) => "forbidden".to_owned(),
            Self::NotFound => "not_found".to_owned(),
            Self::BadRequest { code, .. } | Self::Conflict { code, .. } => (*code).to_owned(),
            Self::Unprocessable { code, .. } => code.clone(),
            Self::PayloadTooLarge => "payload_too_large".to_owned(),
            Self::NotAcceptable(_) => "not_acceptable".to_owned(),
            Self::Internal(_) => "internal_error".to_owned(),
        }
    }

    /// A 422 naming the field at fault.
    pub fn invalid(
        code: impl Into<String>,
        field: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self::Unprocessable {
            code: code.into(),
            field: Some(field.into()),
            detail: detail.into(),
        }
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        Self::Internal(error.to_string())
    }

    pub fn problem(&self) -> Problem {
        let status = self.status_code();
        let detail = match self {
            Self::Internal(_) => "something went wrong; the error has been logged".to_owned(),
            other => other.to_string(),
        };
        Problem {
            kind: format!("/problems/{}", self.code()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code: self.code(),
            field: match self {
                Self::BadRequest { field, .. } | Self::Unprocessable { field, .. } => field.clone(),
                _ => None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(detail) = &self {
            // Logged once, here, inside the request's span.
            tracing::error!(error = %detail, "request failed");
        }
        let mut response = (self.status_code(), axum::Json(self.problem())).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if matches!(self, Self::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<CaseError> for ApiError {
    fn from(error: CaseError) -> Self {
        let field = match &error {
            CaseError::InvalidValue { field, .. } | CaseError::MissingText(field) => {
                Some((*field).to_owned())
            }
            _ => None,
        };
        Self::Unprocessable {
            code: error.code().to_owned(),
            field,
            detail: error.to_string(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Rejected(error) => error.into(),
            StoreError::VersionConflict { .. } | StoreError::Conflict => Self::Conflict {
                code: "version_conflict",
                detail: error.to_string(),
            },
            StoreError::DuplicateUpn => Self::Conflict {
                code: "duplicate_upn",
                detail: error.to_string(),
            },
            StoreError::UnknownChild => Self::NotFound,
            StoreError::IdempotencyKeyReused => Self::Unprocessable {
                code: "idempotency_key_reused".to_owned(),
                field: Some("Idempotency-Key".to_owned()),
                detail: error.to_string(),
            },
            other => Self::internal(other),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::internal(error)
    }
}

impl From<projections::projector::ProjectionError> for ApiError {
    fn from(error: projections::projector::ProjectionError) -> Self {
        Self::internal(error)
    }
}
