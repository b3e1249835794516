//! Children: register, look up, send commands, read history and access log.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::{ChildCase, ChildCommand};
use projections::store::{CommandContext, HistoryEntry};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Caller, Role, log_access};
use crate::error::{ApiError, Problem, Result};
use crate::routes::{ApiPath, ApiQuery, RequestId};
use crate::wire::{JsonObject, parse_command};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/children", post(register).get(find_by_upn))
        .route("/api/v1/children/{child_id}", get(show))
        .route("/api/v1/children/{child_id}/commands", post(command))
        .route("/api/v1/children/{child_id}/history", get(history))
        .route("/api/v1/children/{child_id}/access-log", get(access_log))
}

/// What a command did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CommandResponse {
    pub child_id: Uuid,
    /// The child's version after the command: send it as `If-Match` next time.
    pub version: u64,
    /// The events appended, each with its `type`, `sequence` and fields.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Value>,
}

/// The body of `POST /api/v1/children` (documentation of the wire format;
/// parsing goes through [`parse_command`]).
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)] // read by utoipa's derive only
pub struct RegisterChildBody {
    /// 13 characters with a valid check letter (DOMAIN.md).
    #[schema(
        pattern = r"^[A-HJ-NP-RT-Z][0-9]{11}[0-9A-HJ-NP-RT-Z]$",
        example = "B801200005001"
    )]
    upn: String,
    #[schema(min_length = 1, max_length = 100, pattern = r"^\S(.*\S)?$")]
    given_name: String,
    #[schema(min_length = 1, max_length = 100, pattern = r"^\S(.*\S)?$")]
    family_name: String,
    /// Not in the future.
    date_of_birth: chrono::NaiveDate,
    #[schema(pattern = r"^[0-9]{3}$", example = "330")]
    la_code: String,
    #[schema(pattern = r"^[0-9]{6}$", example = "100002")]
    school_urn: Option<String>,
    #[schema(minimum = 0, maximum = 14)]
    year_group: Option<u8>,
    #[schema(pattern = "^[NKE]$")]
    sen: Option<String>,
}

/// A registration's result.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Registered {
    pub child_id: Uuid,
    pub version: u64,
}

/// An open track step and its deadline.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OpenStep {
    pub track: String,
    pub step: String,
    pub due_on: String,
    pub overdue: bool,
}

/// A child's summary, current to the last event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChildView {
    pub child_id: String,
    pub upn: String,
    pub former_upns: Vec<String>,
    pub given_name: String,
    pub family_name: String,
    pub date_of_birth: String,
    pub la_code: String,
    pub school_urn: Option<String>,
    pub destination_urn: Option<String>,
    pub destination_confirmed: bool,
    pub year_group: Option<u8>,
    pub sen: Option<String>,
    /// Open watchlist reasons, including `overdue_track_step`.
    pub flags: Vec<String>,
    pub open_steps: Vec<OpenStep>,
    pub version: u64,
}

impl ChildView {
    pub fn from_case(child_id: &str, case: &ChildCase, today: chrono::NaiveDate) -> Option<Self> {
        let identity = case.identity.as_ref()?;
        let open_steps: Vec<OpenStep> = case
            .open_steps()
            .into_iter()
            .map(|(track, due)| OpenStep {
                track: track.as_str().to_owned(),
                step: due.step.as_str().to_owned(),
                due_on: due.due_on.to_string(),
                overdue: due.due_on < today,
            })
            .collect();
        let mut flags: Vec<String> = case
            .watch_reasons()
            .iter()
            .map(|reason| reason.as_str().to_owned())
            .collect();
        if open_steps.iter().any(|step| step.overdue) {
            flags.push(domain::WatchReason::OverdueTrackStep.as_str().to_owned());
        }
        Some(Self {
            child_id: child_id.to_owned(),
            upn: identity.upn.to_string(),
            former_upns: case.former_upns.iter().map(ToString::to_string).collect(),
            given_name: identity.given_name.to_string(),
            family_name: identity.family_name.to_string(),
            date_of_birth: identity.date_of_birth.to_string(),
            la_code: identity.la_code.to_string(),
            school_urn: case.school_urn.as_ref().map(ToString::to_string),
            destination_urn: case.destination_urn.as_ref().map(ToString::to_string),
            destination_confirmed: case.destination_confirmed,
            year_group: identity.year_group,
            sen: identity.sen.map(|sen| format!("{sen:?}")),
            flags,
            open_steps,
            version: case.version,
        })
    }
}

fn parse_child_id(raw: &str) -> Result<Uuid> {
    // A malformed id cannot name a child in anyone's scope.
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound)
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(value) => {
            let key = value.to_str().ok().map(str::trim).unwrap_or_default();
            if key.is_empty() || key.len() > 200 {
                return Err(ApiError::BadRequest {
                    code: "invalid_idempotency_key",
                    field: Some("Idempotency-Key".to_owned()),
                    detail: "Idempotency-Key must be 1 to 200 visible characters".to_owned(),
                });
            }
            Ok(Some(key.to_owned()))
        }
    }
}

fn if_match(headers: &HeaderMap) -> Result<Option<u64>> {
    match headers.get(axum::http::header::IF_MATCH) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .map(|raw| raw.trim().trim_start_matches("W/").trim_matches('"'))
            .and_then(|raw| raw.parse().ok())
            .map(Some)
            .ok_or(ApiError::BadRequest {
                code: "invalid_if_match",
                field: Some("If-Match".to_owned()),
                detail: "If-Match must be a version number in quotes, like \"3\"".to_owned(),
            }),
    }
}

fn event_json(sequence: u64, event: &domain::ChildEvent) -> serde_json::Value {
    let mut value = serde_json::to_value(event).expect("events serialize");
    if let Some(map) = value.as_object_mut() {
        map.insert("sequence".to_owned(), sequence.into());
    }
    value
}

async fn run_command(
    state: &AppState,
    caller: &Caller,
    child_id: Uuid,
    command: ChildCommand,
    headers: &HeaderMap,
    request_id: &str,
) -> Result<projections::Outcome> {
    caller.may_send(&command)?;
    let context = CommandContext {
        actor: caller.actor(),
        request_id: request_id.to_owned(),
        idempotency_key: idempotency_key(headers)?,
        expected_version: if_match(headers)?,
    };
    let is_registration = matches!(command, ChildCommand::RegisterChild { .. });
    // Scope is decided on the record itself as loaded for the command, not on
    // a read model that may lag.
    let outcome = state
        .store
        .execute_authorized(child_id, command, &context, &state.services(), |case| {
            caller.can_see_case(case)
        })
        .await?;
    log_access(
        &state.db,
        &context.actor,
        &[&outcome.child_id.to_string()],
        if is_registration {
            "POST /api/v1/children"
        } else {
            "POST /api/v1/children/{child_id}/commands"
        },
        "command",
        request_id,
    )
    .await?;
    Ok(outcome)
}

/// Register a child.
#[utoipa::path(post, path = "/api/v1/children", tag = "children",
    request_body(content = RegisterChildBody, description = "A RegisterChild command; `type` may be omitted"),
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key returns the first response")),
    responses(
        (status = 201, body = Registered),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem, description = "duplicate_upn"),
        (status = 413, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn register(
    State(state): State<AppState>,
    caller: Caller,
    RequestId(request_id): RequestId,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<Registered>)> {
    let command = parse_command(body, Some("RegisterChild"))?;
    let outcome = run_command(
        &state,
        &caller,
        Uuid::new_v4(),
        command,
        &headers,
        &request_id,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            child_id: outcome.child_id,
            version: outcome.version,
        }),
    ))
}

/// Send a command to a child's case.
#[utoipa::path(post, path = "/api/v1/children/{child_id}/commands", tag = "children",
    request_body(content = domain::ChildCommand, description = "A command: `type` is its name"),
    params(("child_id" = String, Path),
        ("If-Match" = Option<String>, Header, description = "The version the change is based on, e.g. \"3\""),
        ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key returns the first response")),
    responses(
        (status = 200, body = CommandResponse),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "version_conflict or duplicate_upn"),
        (status = 413, body = Problem), (status = 422, body = Problem, description = "a refused rule, e.g. enquiries_incomplete")),
    security(("bearer" = [])))]
async fn command(
    State(state): State<AppState>,
    caller: Caller,
    RequestId(request_id): RequestId,
    ApiPath(child_id): ApiPath<String>,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Json<CommandResponse>> {
    let child_id = parse_child_id(&child_id)?;
    let command = parse_command(body, None)?;
    if matches!(command, ChildCommand::RegisterChild { .. }) {
        return Err(ApiError::invalid(
            "unknown_command_type",
            "type",
            "register a child with POST /api/v1/children",
        ));
    }
    let outcome = run_command(&state, &caller, child_id, command, &headers, &request_id).await?;
    Ok(Json(CommandResponse {
        child_id: outcome.child_id,
        version: outcome.version,
        events: outcome
            .events
            .iter()
            .map(|recorded| event_json(recorded.sequence, &recorded.event))
            .collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UpnQuery {
    /// The UPN (current or former) to look for.
    #[param(
        required = true,
        pattern = r"^[A-HJ-NP-RT-Z][0-9]{11}[0-9A-HJ-NP-RT-Z]$"
    )]
    pub upn: Option<String>,
}

/// Children matching a query.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChildList {
    pub items: Vec<projections::queries::ChildSummary>,
}

/// Find a child by UPN.
#[utoipa::path(get, path = "/api/v1/children", tag = "children", params(UpnQuery),
    responses((status = 200, body = ChildList), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn find_by_upn(
    State(state): State<AppState>,
    caller: Caller,
    RequestId(request_id): RequestId,
    ApiQuery(query): ApiQuery<UpnQuery>,
) -> Result<Json<ChildList>> {
    caller.require(&[Role::La, Role::School, Role::Auditor], "look up children")?;
    let raw = query
        .upn
        .ok_or_else(|| ApiError::invalid("missing_field", "upn", "give ?upn=UPN"))?;
    let upn = domain::Upn::parse(&raw)
        .map_err(|e| ApiError::invalid("invalid_upn", "upn", e.to_string()))?;
    let items: Vec<_> = projections::queries::children_by_upn(&state.db, upn.as_str())
        .await?
        .into_iter()
        .filter(|child| {
            caller.can_see(
                &child.la_code,
                child.school_urn.as_deref(),
                child.destination_urn.as_deref(),
            )
        })
        .collect();
    let ids: Vec<&str> = items.iter().map(|child| child.child_id.as_str()).collect();
    if !ids.is_empty() {
        log_access(
            &state.db,
            &caller.actor(),
            &ids,
            "GET /api/v1/children",
            "view",
            &request_id,
        )
        .await?;
    }
    Ok(Json(ChildList { items }))
}

/// Loads a child's case from the log and checks the caller may see it.
async fn visible_case(
    state: &AppState,
    caller: &Caller,
    child_id: &str,
) -> Result<(Uuid, ChildCase)> {
    let id = parse_child_id(child_id)?;
    let (case, _) = state.store.replay(id, None).await?;
    if !caller.can_see_case(&case) {
        return Err(ApiError::NotFound);
    }
    Ok((id, case))
}

/// A child's summary.
#[utoipa::path(get, path = "/api/v1/children/{child_id}", tag = "children", params(("child_id" = String, Path)),
    responses((status = 200, body = ChildView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    RequestId(request_id): RequestId,
    ApiPath(child_id): ApiPath<String>,
) -> Result<Json<ChildView>> {
    caller.require(
        &[Role::La, Role::School, Role::Auditor],
        "read a child's record",
    )?;
    let (id, case) = visible_case(&state, &caller, &child_id).await?;
    log_access(
        &state.db,
        &caller.actor(),
        &[&id.to_string()],
        "GET /api/v1/children/{child_id}",
        "view",
        &request_id,
    )
    .await?;
    let view =
        ChildView::from_case(&id.to_string(), &case, state.today()).ok_or(ApiError::NotFound)?;
    Ok(Json(view))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Replay the record as it stood at this moment (RFC 3339).
    #[param(format = DateTime)]
    pub as_of: Option<String>,
}

/// Who recorded an event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActorView {
    pub name: String,
    pub role: String,
    pub org: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryEvent {
    /// The event's position in the whole log.
    pub position: i64,
    /// The event's sequence number in this child's record.
    pub sequence: i64,
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub recorded_at: String,
    pub actor: ActorView,
    pub request_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct History {
    pub child_id: String,
    pub as_of: Option<String>,
    /// The record's state at `as_of` (or now).
    pub state: Option<ChildView>,
    pub events: Vec<HistoryEvent>,
}

pub fn history_event(entry: HistoryEntry) -> HistoryEvent {
    let meta = |key: &str| entry.metadata.get(key).cloned().unwrap_or_default();
    HistoryEvent {
        position: entry.position,
        sequence: entry.sequence,
        kind: entry.event_type.clone(),
        recorded_at: entry.recorded_at.clone(),
        actor: ActorView {
            name: meta("actor_name"),
            role: meta("actor_role"),
            org: meta("actor_org"),
        },
        request_id: entry.metadata.get("request_id").cloned(),
        data: entry.data,
    }
}

pub fn parse_as_of(raw: Option<&str>) -> Result<Option<DateTime<Utc>>> {
    raw.map(|raw| {
        DateTime::parse_from_rfc3339(raw)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|_| {
                ApiError::invalid(
                    "invalid_as_of",
                    "as_of",
                    "as_of must be an RFC 3339 time, like 2026-09-03T09:00:00Z",
                )
            })
    })
    .transpose()
}

/// A child's history, oldest first, across every school; optionally as of a moment.
#[utoipa::path(get, path = "/api/v1/children/{child_id}/history", tag = "children",
    params(("child_id" = String, Path), HistoryQuery),
    responses((status = 200, body = History), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn history(
    State(state): State<AppState>,
    caller: Caller,
    RequestId(request_id): RequestId,
    ApiPath(child_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<History>> {
    caller.require(
        &[Role::La, Role::School, Role::Auditor],
        "read a child's history",
    )?;
    let as_of = parse_as_of(query.as_of.as_deref())?;
    if as_of.is_some() {
        caller.require(
            &[Role::La, Role::Auditor],
            "replay a record as of a past moment",
        )?;
    }
    let (id, _) = visible_case(&state, &caller, &child_id).await?;
    let (case, entries) = state.store.replay(id, as_of).await?;
    log_access(
        &state.db,
        &caller.actor(),
        &[&id.to_string()],
        "GET /api/v1/children/{child_id}/history",
        if as_of.is_some() { "replay" } else { "view" },
        &request_id,
    )
    .await?;
    let today = as_of.map_or_else(|| state.today(), |at| at.date_naive());
    Ok(Json(History {
        child_id: id.to_string(),
        as_of: as_of.map(|at| at.to_rfc3339()),
        state: ChildView::from_case(&id.to_string(), &case, today),
        events: entries.into_iter().map(history_event).collect(),
    }))
}

/// One view or export of a child's record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccessEntry {
    pub at: String,
    pub actor: ActorView,
    pub endpoint: String,
    pub action: String,
    pub request_id: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccessLog {
    pub child_id: String,
    pub items: Vec<AccessEntry>,
}

/// Who viewed or exported this child's record, when, through which endpoint.
#[utoipa::path(get, path = "/api/v1/children/{child_id}/access-log", tag = "children",
    params(("child_id" = String, Path)),
    responses((status = 200, body = AccessLog), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn access_log(
    State(state): State<AppState>,
    caller: Caller,
    RequestId(request_id): RequestId,
    ApiPath(child_id): ApiPath<String>,
) -> Result<Json<AccessLog>> {
    caller.require(&[Role::La, Role::Auditor], "read access logs")?;
    let (id, _) = visible_case(&state, &caller, &child_id).await?;
    let at = match state.db.kind() {
        projections::BackendKind::Postgres => {
            "to_char(at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        }
        projections::BackendKind::Sqlite => "at",
    };
    let rows = sqlx::query(&format!(
        "select {at} as at, actor_name, actor_role, actor_org, endpoint, action, request_id \
         from access_log where child_id = $1 order by id"
    ))
    .bind(id.to_string())
    .fetch_all(state.db.any())
    .await?;
    use sqlx::Row;
    let items = rows
        .iter()
        .map(|row| {
            Ok(AccessEntry {
                at: projections::store::normalise_timestamp(&row.try_get::<String, _>("at")?),
                actor: ActorView {
                    name: row.try_get("actor_name")?,
                    role: row.try_get("actor_role")?,
                    org: row.try_get("actor_org")?,
                },
                endpoint: row.try_get("endpoint")?,
                action: row.try_get("action")?,
                request_id: row.try_get("request_id")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    log_access(
        &state.db,
        &caller.actor(),
        &[&id.to_string()],
        "GET /api/v1/children/{child_id}/access-log",
        "view",
        &request_id,
    )
    .await?;
    Ok(Json(AccessLog {
        child_id: id.to_string(),
        items,
    }))
}
