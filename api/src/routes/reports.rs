//! The LA watchlist, the reports, and a school's incoming cohort.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use domain::{LaCode, Urn, WatchReason};
use projections::queries::{self, DestinationChange, IncomingChild, NoShowRow, WatchFilter};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::{Caller, Role, log_access};
use crate::error::{ApiError, Problem, Result};
use crate::routes::{ApiPath, ApiQuery, Page, RequestId, csv_response, wants_csv};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/watchlist", get(watchlist))
        .route(
            "/api/v1/reports/destination-changes",
            get(destination_changes),
        )
        .route("/api/v1/reports/day-one-no-shows", get(day_one_no_shows))
        .route("/api/v1/schools/{urn}/incoming", get(incoming))
}

fn parse_la(raw: Option<&str>) -> Result<Option<LaCode>> {
    raw.map(|raw| {
        LaCode::parse(raw).map_err(|e| ApiError::invalid("invalid_la", "la", e.to_string()))
    })
    .transpose()
}

fn parse_school(raw: Option<&str>, field: &str) -> Result<Option<Urn>> {
    raw.map(|raw| {
        Urn::parse(raw)
            .map_err(|e| ApiError::invalid(format!("invalid_{field}"), field, e.to_string()))
    })
    .transpose()
}

fn parse_position_cursor(raw: Option<&str>) -> Result<Option<i64>> {
    raw.map(|raw| {
        raw.parse().map_err(|_| {
            ApiError::invalid(
                "invalid_cursor",
                "cursor",
                "cursor must be a value returned as next_cursor",
            )
        })
    })
    .transpose()
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WatchlistQuery {
    /// The LA code; defaults to the token's own LA.
    #[param(pattern = r"^[0-9]{3}$")]
    pub la: Option<String>,
    /// One of no_destination, appeal_pending, day_one_no_show, reported_missing,
    /// removed_without_destination, cme_referral_open, overdue_track_step.
    #[param(
        pattern = r"^(no_destination|appeal_pending|day_one_no_show|reported_missing|removed_without_destination|cme_referral_open|overdue_track_step)$"
    )]
    pub reason: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(min_length = 1, max_length = 100)]
    pub cursor: Option<String>,
}

/// One child on the watchlist. Analysts get no names, UPNs or dates of birth.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WatchItemView {
    pub child_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    pub la_code: String,
    pub school_urn: Option<String>,
    pub destination_urn: Option<String>,
    pub reasons: Vec<String>,
    pub since: String,
    pub reason_details: Vec<queries::WatchReasonDetail>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WatchlistPage {
    pub items: Vec<WatchItemView>,
    pub next_cursor: Option<String>,
}

/// The LA watchlist: children needing attention, one item per child.
#[utoipa::path(get, path = "/api/v1/watchlist", tag = "reports", params(WatchlistQuery),
    responses((status = 200, body = WatchlistPage, description = "JSON, or CSV with a header row when Accept: text/csv"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn watchlist(
    State(state): State<AppState>,
    caller: Caller,
    RequestId(request_id): RequestId,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<WatchlistQuery>,
) -> Result<Response> {
    caller.require(
        &[Role::La, Role::Auditor, Role::Analyst],
        "read the watchlist",
    )?;
    let la = caller.la_scope(parse_la(query.la.as_deref())?.as_ref())?;
    if let Some(reason) = &query.reason {
        if WatchReason::parse(reason).is_none() {
            return Err(ApiError::invalid(
                "invalid_reason",
                "reason",
                format!(
                    "unknown reason {reason:?}; use one of {:?}",
                    projections::read_models::watch_reason_names()
                ),
            ));
        }
    }
    let page = Page::from_query(query.limit, query.cursor.clone())?;
    let mut items = queries::watchlist(
        &state.db,
        &WatchFilter {
            la_code: la.map(|la| la.to_string()),
            reason: query.reason.clone(),
            today: state.today().to_string(),
            after: page.cursor.clone(),
            limit: page.limit + 1,
        },
    )
    .await?;
    let next_cursor = page.next(&mut items, |item| item.child_id.clone());
    let anonymous = caller.role == Role::Analyst;
    let csv = wants_csv(&headers);
    if !anonymous {
        let ids: Vec<&str> = items.iter().map(|item| item.child_id.as_str()).collect();
        log_access(
            &state.db,
            &caller.actor(),
            &ids,
            "GET /api/v1/watchlist",
            if csv { "export" } else { "view" },
            &request_id,
        )
        .await?;
    } else if csv {
        log_access(
            &state.db,
            &caller.actor(),
            &[],
            "GET /api/v1/watchlist",
            "export",
            &request_id,
        )
        .await?;
    }
    let views: Vec<WatchItemView> = items
        .into_iter()
        .map(|item| WatchItemView {
            upn: (!anonymous).then_some(item.upn),
            given_name: (!anonymous).then_some(item.given_name),
            family_name: (!anonymous).then_some(item.family_name),
            child_id: item.child_id,
            la_code: item.la_code,
            school_urn: item.school_urn,
            destination_urn: item.destination_urn,
            reasons: item.reasons,
            since: item.since,
            reason_details: item.reason_details,
        })
        .collect();
    if csv {
        let mut header = vec!["child_id"];
        if !anonymous {
            header.extend(["upn", "given_name", "family_name"]);
        }
        header.extend([
            "la_code",
            "school_urn",
            "destination_urn",
            "reasons",
            "since",
        ]);
        let rows = views.iter().map(|item| {
            let mut row = vec![item.child_id.clone()];
            if !anonymous {
                row.push(item.upn.clone().unwrap_or_default());
                row.push(item.given_name.clone().unwrap_or_default());
                row.push(item.family_name.clone().unwrap_or_default());
            }
            row.push(item.la_code.clone());
            row.push(item.school_urn.clone().unwrap_or_default());
            row.push(item.destination_urn.clone().unwrap_or_default());
            row.push(item.reasons.join(";"));
            row.push(item.since.clone());
            row
        });
        return Ok(csv_response(&header, rows, next_cursor.as_deref()));
    }
    Ok(Json(WatchlistPage {
        items: views,
        next_cursor,
    })
    .into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    #[param(pattern = r"^[0-9]{3}$")]
    pub la: Option<String>,
    /// Only changes made on or after this date (YYYY-MM-DD).
    #[param(format = Date)]
    pub since: Option<String>,
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(min_length = 1, max_length = 100)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChangesPage {
    pub items: Vec<DestinationChange>,
    pub next_cursor: Option<String>,
}

/// Destination changes in an LA: child, from, to, reason, when, who.
#[utoipa::path(get, path = "/api/v1/reports/destination-changes", tag = "reports", params(ChangesQuery),
    responses((status = 200, body = ChangesPage, description = "JSON, or CSV when Accept: text/csv"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn destination_changes(
    State(state): State<AppState>,
    caller: Caller,
    RequestId(request_id): RequestId,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ChangesQuery>,
) -> Result<Response> {
    caller.require(&[Role::La, Role::Auditor, Role::Analyst], "read reports")?;
    let la = caller.la_scope(parse_la(query.la.as_deref())?.as_ref())?;
    let since = query
        .since
        .as_deref()
        .map(|raw| {
            chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .map(|date| date.to_string())
                .map_err(|_| {
                    ApiError::invalid(
                        "invalid_since",
                        "since",
                        "since must be a date as YYYY-MM-DD",
                    )
                })
        })
        .transpose()?;
    let page = Page::from_query(query.limit, query.cursor.clone())?;
    let mut items = queries::destination_changes(
        &state.db,
        la.as_ref().map(LaCode::as_str),
        since.as_deref(),
        parse_position_cursor(page.cursor.as_deref())?,
        page.limit + 1,
    )
    .await?;
    let next_cursor = page.next(&mut items, |item| item.position.to_string());
    let csv = wants_csv(&headers);
    if csv {
        log_access(
            &state.db,
            &caller.actor(),
            &[],
            "GET /api/v1/reports/destination-changes",
            "export",
            &request_id,
        )
        .await?;
        let header = [
            "child_id",
            "la_code",
            "from_urn",
            "to_urn",
            "reason",
            "changed_on",
            "changed_at",
        ];
        let rows = items.iter().map(|item| {
            vec![
                item.child_id.clone(),
                item.la_code.clone(),
                item.from_urn.clone(),
                item.to_urn.clone(),
                item.reason.clone(),
                item.changed_on.clone(),
                item.changed_at.clone(),
            ]
        });
        return Ok(csv_response(&header, rows, next_cursor.as_deref()));
    }
    Ok(Json(ChangesPage { items, next_cursor }).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoShowQuery {
    #[param(pattern = r"^[0-9]{3}$")]
    pub la: Option<String>,
    /// Only this school's no-shows.
    #[param(pattern = r"^[0-9]{6}$")]
    pub school: Option<String>,
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(min_length = 1, max_length = 100)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NoShowPage {
    pub items: Vec<NoShowRow>,
    pub next_cursor: Option<String>,
}

/// Children who did not arrive on day one, and whether they have since.
#[utoipa::path(get, path = "/api/v1/reports/day-one-no-shows", tag = "reports", params(NoShowQuery),
    responses((status = 200, body = NoShowPage, description = "JSON, or CSV when Accept: text/csv"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn day_one_no_shows(
    State(state): State<AppState>,
    caller: Caller,
    RequestId(request_id): RequestId,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<NoShowQuery>,
) -> Result<Response> {
    let asked_school = parse_school(query.school.as_deref(), "school")?;
    let (la, school) = if caller.role == Role::School {
        // A school sees its own no-shows only.
        match (&asked_school, &caller.school) {
            (Some(asked), Some(own)) if asked != own => {
                return Err(ApiError::Forbidden(format!(
                    "your token is for school {own}, not {asked}"
                )));
            }
            _ => (None, caller.school.clone()),
        }
    } else {
        caller.require(&[Role::La, Role::Auditor, Role::Analyst], "read reports")?;
        (
            caller.la_scope(parse_la(query.la.as_deref())?.as_ref())?,
            asked_school,
        )
    };
    let page = Page::from_query(query.limit, query.cursor.clone())?;
    let mut items = queries::day_one_no_shows(
        &state.db,
        la.as_ref().map(LaCode::as_str),
        school.as_ref().map(Urn::as_str),
        parse_position_cursor(page.cursor.as_deref())?,
        page.limit + 1,
    )
    .await?;
    let next_cursor = page.next(&mut items, |item| item.position.to_string());
    if wants_csv(&headers) {
        log_access(
            &state.db,
            &caller.actor(),
            &[],
            "GET /api/v1/reports/day-one-no-shows",
            "export",
            &request_id,
        )
        .await?;
        let header = [
            "child_id",
            "school_urn",
            "la_code",
            "date",
            "resolved",
            "resolved_on",
        ];
        let rows = items.iter().map(|item| {
            vec![
                item.child_id.clone(),
                item.school_urn.clone(),
                item.la_code.clone(),
                item.date.clone(),
                item.resolved.to_string(),
                item.resolved_on.clone().unwrap_or_default(),
            ]
        });
        return Ok(csv_response(&header, rows, next_cursor.as_deref()));
    }
    Ok(Json(NoShowPage { items, next_cursor }).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncomingQuery {
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(min_length = 1, max_length = 100)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IncomingPage {
    pub school_urn: String,
    pub items: Vec<IncomingChild>,
    pub next_cursor: Option<String>,
}

/// A school's incoming cohort with the transition information shared for each child.
#[utoipa::path(get, path = "/api/v1/schools/{urn}/incoming", tag = "schools",
    params(("urn" = String, Path, pattern = r"^[0-9]{6}$"), IncomingQuery),
    responses((status = 200, body = IncomingPage), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn incoming(
    State(state): State<AppState>,
    caller: Caller,
    RequestId(request_id): RequestId,
    ApiPath(urn): ApiPath<String>,
    ApiQuery(query): ApiQuery<IncomingQuery>,
) -> Result<Json<IncomingPage>> {
    let urn =
        Urn::parse(&urn).map_err(|e| ApiError::invalid("invalid_urn", "urn", e.to_string()))?;
    caller.require(
        &[Role::La, Role::School, Role::Auditor],
        "read an incoming cohort",
    )?;
    if caller.role == Role::School && caller.school.as_ref() != Some(&urn) {
        return Err(ApiError::Forbidden(format!(
            "your token is for school {}, not {urn}",
            caller.org()
        )));
    }
    let page = Page::from_query(query.limit, query.cursor.clone())?;
    let mut items = queries::incoming(
        &state.db,
        urn.as_str(),
        page.cursor.as_deref(),
        page.limit + 1,
    )
    .await?;
    let next_cursor = page.next(&mut items, |item| item.child_id.clone());
    if let Some(la) = &caller.la {
        items.retain(|item| item.la_code == la.as_str());
    }
    let ids: Vec<&str> = items.iter().map(|item| item.child_id.as_str()).collect();
    log_access(
        &state.db,
        &caller.actor(),
        &ids,
        "GET /api/v1/schools/{urn}/incoming",
        "view",
        &request_id,
    )
    .await?;
    Ok(Json(IncomingPage {
        school_urn: urn.to_string(),
        items,
        next_cursor,
    }))
}
