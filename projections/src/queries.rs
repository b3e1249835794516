//! Queries over the read models: what the API shows people.
//!
//! Scope (which LA, which school) arrives as a filter from the caller; these
//! functions never decide who may see what. SQL is built with only the
//! conditions a call needs, so each query can use its index.

use sqlx::Row;

use crate::db::Database;
use crate::read_models::{PAGE_SEPARATOR, Val, bind_all, placeholders};

/// A child's summary row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChildSummary {
    pub child_id: String,
    pub upn: String,
    pub given_name: String,
    pub family_name: String,
    pub date_of_birth: String,
    pub la_code: String,
    pub school_urn: Option<String>,
    pub destination_urn: Option<String>,
    pub destination_confirmed: bool,
    pub year_group: Option<i64>,
    pub sen: Option<String>,
    /// The open watchlist reasons (overdue track steps excluded).
    pub flags: Vec<String>,
    pub version: i64,
}

const SUMMARY_SELECT: &str = "select child_id, upn, given_name, family_name, date_of_birth, la_code, school_urn, \
     destination_urn, destination_confirmed, year_group, sen, flags, version from child_summary";

fn summary_from(row: &sqlx::any::AnyRow) -> Result<ChildSummary, sqlx::Error> {
    let flags: String = row.try_get("flags")?;
    Ok(ChildSummary {
        child_id: row.try_get("child_id")?,
        upn: row.try_get("upn")?,
        given_name: row.try_get("given_name")?,
        family_name: row.try_get("family_name")?,
        date_of_birth: row.try_get("date_of_birth")?,
        la_code: row.try_get("la_code")?,
        school_urn: row.try_get("school_urn")?,
        destination_urn: row.try_get("destination_urn")?,
        destination_confirmed: row.try_get::<i64, _>("destination_confirmed")? != 0,
        year_group: row.try_get("year_group")?,
        sen: row.try_get("sen")?,
        flags: serde_json::from_str(&flags).unwrap_or_default(),
        version: row.try_get("version")?,
    })
}

pub async fn child(db: &Database, child_id: &str) -> Result<Option<ChildSummary>, sqlx::Error> {
    let row = sqlx::query(&format!("{SUMMARY_SELECT} where child_id = $1"))
        .bind(child_id)
        .fetch_optional(db.any())
        .await?;
    row.as_ref().map(summary_from).transpose()
}

/// Children with this UPN, current or former.
pub async fn children_by_upn(db: &Database, upn: &str) -> Result<Vec<ChildSummary>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "{SUMMARY_SELECT} where child_id in (select child_id from child_upns where upn = $1) order by child_id"
    ))
    .bind(upn)
    .fetch_all(db.any())
    .await?;
    rows.iter().map(summary_from).collect()
}

/// SQL with numbered parameters, built one condition at a time.
#[derive(Debug, Default)]
struct Sql {
    text: String,
    values: Vec<Val>,
}

impl Sql {
    fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            values: Vec::new(),
        }
    }

    /// Appends `fragment`, replacing each `?` with the next parameter.
    fn push(&mut self, fragment: &str, values: impl IntoIterator<Item = Val>) -> &mut Self {
        let mut values = values.into_iter();
        for piece in fragment.split_inclusive('?') {
            if let Some(head) = piece.strip_suffix('?') {
                self.text.push_str(head);
                let value = values.next().expect("a value for every placeholder");
                self.values.push(value);
                self.text.push_str(&format!("${}", self.values.len()));
            } else {
                self.text.push_str(piece);
            }
        }
        self
    }

    /// Appends `fragment` (with one `?`) only when there is a value for it:
    /// an optional filter.
    fn filter<V: Into<Val>>(&mut self, fragment: &str, value: Option<V>) -> &mut Self {
        if let Some(value) = value {
            self.push(fragment, [value.into()]);
        }
        self
    }

    async fn fetch(&self, db: &Database) -> Result<Vec<sqlx::any::AnyRow>, sqlx::Error> {
        bind_all(sqlx::query(&self.text), &self.values)
            .fetch_all(db.any())
            .await
    }
}

/// One child on the watchlist.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WatchItem {
    pub child_id: String,
    pub upn: String,
    pub given_name: String,
    pub family_name: String,
    pub la_code: String,
    pub school_urn: Option<String>,
    pub destination_urn: Option<String>,
    pub reasons: Vec<String>,
    /// The earliest date any of the listed reasons started.
    pub since: String,
    pub reason_details: Vec<WatchReasonDetail>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WatchReasonDetail {
    pub reason: String,
    pub since: String,
}

/// Which part of the watchlist to read.
#[derive(Debug, Clone, Default)]
pub struct WatchFilter {
    /// `None` for every LA (an auditor or analyst scoped to all).
    pub la_code: Option<String>,
    pub reason: Option<String>,
    /// Today, for deciding which track steps are overdue.
    pub today: String,
    /// Children after this id (the page cursor).
    pub after: Option<String>,
    pub limit: i64,
}

/// The LA watchlist, one item per child, ordered by child id.
pub async fn watchlist(db: &Database, filter: &WatchFilter) -> Result<Vec<WatchItem>, sqlx::Error> {
    let overdue = "overdue_track_step";
    if let Some(reason) = filter.reason.as_deref().filter(|reason| *reason != overdue) {
        if let Some(items) = watchlist_page(db, filter, reason).await? {
            return Ok(items);
        }
    }
    let want_events = filter.reason.as_deref() != Some(overdue);
    let want_overdue = filter
        .reason
        .as_deref()
        .is_none_or(|reason| reason == overdue);
    let mut sql = Sql::new("select child_id from (");
    let mut branches = 0;
    if want_events {
        sql.push(
            "select child_id from watchlist where cleared_on is null",
            [],
        );
        sql.filter(" and la_code = ?", filter.la_code.as_deref());
        sql.filter(" and reason = ?", filter.reason.as_deref());
        sql.filter(" and child_id > ?", filter.after.as_deref());
        branches += 1;
    }
    if want_overdue {
        if branches > 0 {
            sql.push(" union ", []);
        }
        sql.push(
            "select child_id from open_track_steps where due_on < ?",
            [Val::from(filter.today.as_str())],
        );
        sql.filter(" and la_code = ?", filter.la_code.as_deref());
        sql.filter(" and child_id > ?", filter.after.as_deref());
    }
    sql.push(
        ") listed order by child_id limit ?",
        [Val::from(filter.limit)],
    );
    let ids: Vec<String> = sql
        .fetch(db)
        .await?
        .iter()
        .map(|row| row.try_get("child_id"))
        .collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let id_values: Vec<Val> = ids.iter().map(|id| Val::from(id.as_str())).collect();
    let list = placeholders(1, ids.len());

    let mut details: std::collections::HashMap<String, Vec<WatchReasonDetail>> =
        std::collections::HashMap::new();
    let reason_sql = format!(
        "select child_id, reason, since from watchlist where cleared_on is null and child_id in ({list}) order by since, reason"
    );
    for row in bind_all(sqlx::query(&reason_sql), &id_values)
        .fetch_all(db.any())
        .await?
    {
        details
            .entry(row.try_get("child_id")?)
            .or_default()
            .push(WatchReasonDetail {
                reason: row.try_get("reason")?,
                since: row.try_get("since")?,
            });
    }
    let overdue_sql = format!(
        "select child_id, min(due_on) as since from open_track_steps where child_id in ({list}) and due_on < ${} group by child_id",
        ids.len() + 1
    );
    let mut overdue_values = id_values.clone();
    overdue_values.push(Val::from(filter.today.as_str()));
    for row in bind_all(sqlx::query(&overdue_sql), &overdue_values)
        .fetch_all(db.any())
        .await?
    {
        details
            .entry(row.try_get("child_id")?)
            .or_default()
            .push(WatchReasonDetail {
                reason: overdue.to_owned(),
                since: row.try_get("since")?,
            });
    }

    let summary_sql = format!("{SUMMARY_SELECT} where child_id in ({list}) order by child_id");
    let mut items = Vec::new();
    for row in bind_all(sqlx::query(&summary_sql), &id_values)
        .fetch_all(db.any())
        .await?
    {
        let summary = summary_from(&row)?;
        let reason_details = details.remove(&summary.child_id).unwrap_or_default();
        let shown: Vec<&WatchReasonDetail> = reason_details
            .iter()
            .filter(|detail| filter.reason.as_ref().is_none_or(|r| *r == detail.reason))
            .collect();
        let since = shown
            .iter()
            .map(|detail| detail.since.clone())
            .min()
            .unwrap_or_default();
        items.push(WatchItem {
            reasons: reason_details
                .iter()
                .map(|detail| detail.reason.clone())
                .collect(),
            since,
            reason_details,
            child_id: summary.child_id,
            upn: summary.upn,
            given_name: summary.given_name,
            family_name: summary.family_name,
            la_code: summary.la_code,
            school_urn: summary.school_urn,
            destination_urn: summary.destination_urn,
        });
    }
    Ok(items)
}

/// One event-driven reason's page of the watchlist, read from the open
/// watchlist rows alone: each carries the page's copy of its child (migration
/// 0004) and the `watchlist_page` index carries those columns (0005), so the
/// page is one index range. `None` if a row lacks that copy (which the
/// migration's backfill rules out); the caller then assembles the page from
/// the other tables.
async fn watchlist_page(
    db: &Database,
    filter: &WatchFilter,
    reason: &str,
) -> Result<Option<Vec<WatchItem>>, sqlx::Error> {
    let mut sql =
        Sql::new("select child_id, la_code, page from watchlist where cleared_on is null");
    sql.filter(" and la_code = ?", filter.la_code.as_deref());
    sql.push(" and reason = ?", [Val::from(reason)]);
    sql.filter(" and child_id > ?", filter.after.as_deref());
    sql.push(" order by child_id limit ?", [Val::from(filter.limit)]);
    // PostgreSQL through its typed pool: a page is a thousand rows, and the
    // `AnyPool` would copy every value once more on the way. (Fetched whole:
    // turning rows into items as they stream in measured slower.)
    let mut items = Vec::with_capacity(usize::try_from(filter.limit).unwrap_or(0).min(10_000));
    match db.postgres() {
        Some(pool) => {
            for row in bind_all(sqlx::query(&sql.text), &sql.values)
                .fetch_all(pool)
                .await?
            {
                match page_item(PageRow::from_row(&row)?, filter, reason) {
                    Some(item) => items.push(item),
                    None => return Ok(None),
                }
            }
        }
        None => {
            for row in sql.fetch(db).await? {
                match page_item(PageRow::from_row(&row)?, filter, reason) {
                    Some(item) => items.push(item),
                    None => return Ok(None),
                }
            }
        }
    }
    Ok(Some(items))
}

/// A page row as a watchlist item, or `None` if it lacks the page's copy of
/// its child.
fn page_item(row: PageRow<'_>, filter: &WatchFilter, reason: &str) -> Option<WatchItem> {
    // The fields of `page` (migration 0006), in order.
    let mut fields = row.page?.split(PAGE_SEPARATOR);
    let mut field = || fields.next();
    let (upn, given_name, family_name, school_urn, destination_urn, open_reasons, next_due_on) = (
        field()?,
        field()?,
        field()?,
        field()?,
        field()?,
        field()?,
        field()?,
    );
    if fields.next().is_some() {
        return None;
    }
    let present = |value: &str| (!value.is_empty()).then(|| value.to_owned());
    let mut reason_details = Vec::with_capacity(2);
    for open in OpenReasons::new(open_reasons) {
        let (open_reason, open_since) = open?;
        reason_details.push(WatchReasonDetail {
            reason: open_reason.to_owned(),
            since: open_since.to_owned(),
        });
    }
    if !next_due_on.is_empty() && next_due_on < filter.today.as_str() {
        reason_details.push(WatchReasonDetail {
            reason: "overdue_track_step".to_owned(),
            since: next_due_on.to_owned(),
        });
    }
    let since = reason_details
        .iter()
        .filter(|detail| detail.reason == reason)
        .map(|detail| detail.since.as_str())
        .min()
        .unwrap_or_default()
        .to_owned();
    Some(WatchItem {
        child_id: row.child_id.to_owned(),
        upn: upn.to_owned(),
        given_name: given_name.to_owned(),
        family_name: family_name.to_owned(),
        la_code: row.la_code.to_owned(),
        school_urn: present(school_urn),
        destination_urn: present(destination_urn),
        reasons: reason_details
            .iter()
            .map(|detail| detail.reason.clone())
            .collect(),
        since,
        reason_details,
    })
}

/// The `(reason, since)` pairs of a page row's `open_reasons`, read straight
/// from the text the child-cases projection writes (and migration 0004
/// wrote): `[{"reason":"no_destination","since":"2026-09-01"},...]`. Reasons
/// and dates have nothing to escape. An item is `None` where the text is not
/// in that shape, and the caller then takes the general path. (A JSON parser
/// here cost a thousand instructions a row, half the page's decoding.)
struct OpenReasons<'a> {
    rest: Option<&'a str>,
}

impl<'a> OpenReasons<'a> {
    fn new(text: &'a str) -> Self {
        // Without its bracket the text fails to parse as the first item.
        Self {
            rest: Some(text.strip_prefix('[').unwrap_or(text)),
        }
    }
}

impl<'a> Iterator for OpenReasons<'a> {
    type Item = Option<(&'a str, &'a str)>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest.take()?;
        if rest == "]" {
            return None;
        }
        let parsed = (|| {
            let rest = rest.strip_prefix(r#"{"reason":""#)?;
            let (reason, rest) = rest.split_once('"')?;
            let rest = rest.strip_prefix(r#","since":""#)?;
            let (since, rest) = rest.split_once('"')?;
            let rest = rest.strip_prefix('}')?;
            Some((reason, since, rest))
        })();
        match parsed {
            Some((reason, since, rest)) => {
                self.rest = match rest.strip_prefix(',') {
                    Some(next) => Some(next),
                    None if rest == "]" => Some(rest),
                    None => return Some(None),
                };
                Some(Some((reason, since)))
            }
            None => Some(None),
        }
    }
}

/// One row of a watchlist page, from either backend, borrowed from the row.
struct PageRow<'r> {
    child_id: &'r str,
    la_code: &'r str,
    page: Option<&'r str>,
}

impl<'r> PageRow<'r> {
    fn from_row<R>(row: &'r R) -> Result<Self, sqlx::Error>
    where
        R: Row,
        usize: sqlx::ColumnIndex<R>,
        &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        // By position, in the order of `watchlist_page`'s select list.
        // Every column is text on both backends (see the migrations).
        Ok(Self {
            child_id: row.try_get_unchecked(0)?,
            la_code: row.try_get_unchecked(1)?,
            page: row.try_get_unchecked(2)?,
        })
    }
}

/// One row of the destination-change report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DestinationChange {
    pub position: i64,
    pub child_id: String,
    pub la_code: String,
    pub from_urn: String,
    pub to_urn: String,
    pub reason: String,
    /// The day the change was made.
    pub changed_on: String,
    /// When it was recorded.
    pub changed_at: String,
    pub actor_name: String,
    pub actor_role: String,
    pub actor_org: String,
}

/// Destination changes in an LA (or all), on or after `since`, by position.
pub async fn destination_changes(
    db: &Database,
    la_code: Option<&str>,
    since: Option<&str>,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<DestinationChange>, sqlx::Error> {
    let mut sql = Sql::new(
        "select position, child_id, la_code, from_urn, to_urn, reason, changed_on, changed_at, actor_name, actor_role, actor_org \
         from destination_changes where 1 = 1",
    );
    sql.filter(" and la_code = ?", la_code);
    sql.filter(" and changed_on >= ?", since);
    sql.filter(" and position > ?", after);
    sql.push(" order by position limit ?", [Val::from(limit)]);
    sql.fetch(db)
        .await?
        .iter()
        .map(|row| {
            Ok(DestinationChange {
                position: row.try_get("position")?,
                child_id: row.try_get("child_id")?,
                la_code: row.try_get("la_code")?,
                from_urn: row.try_get("from_urn")?,
                to_urn: row.try_get("to_urn")?,
                reason: row.try_get("reason")?,
                changed_on: row.try_get("changed_on")?,
                changed_at: row.try_get("changed_at")?,
                actor_name: row.try_get("actor_name")?,
                actor_role: row.try_get("actor_role")?,
                actor_org: row.try_get("actor_org")?,
            })
        })
        .collect()
}

/// One row of the day-one no-show report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NoShowRow {
    pub position: i64,
    pub child_id: String,
    pub school_urn: String,
    pub la_code: String,
    pub date: String,
    pub resolved: bool,
    pub resolved_on: Option<String>,
}

/// Day-one no-shows in an LA (or all), optionally at one school, by position.
pub async fn day_one_no_shows(
    db: &Database,
    la_code: Option<&str>,
    school: Option<&str>,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<NoShowRow>, sqlx::Error> {
    let mut sql = Sql::new(
        "select recorded_position, child_id, school_urn, la_code, date, resolved, resolved_on \
         from day_one_no_shows where 1 = 1",
    );
    sql.filter(" and la_code = ?", la_code);
    sql.filter(" and school_urn = ?", school);
    sql.filter(" and recorded_position > ?", after);
    sql.push(" order by recorded_position limit ?", [Val::from(limit)]);
    sql.fetch(db)
        .await?
        .iter()
        .map(|row| {
            Ok(NoShowRow {
                position: row.try_get("recorded_position")?,
                child_id: row.try_get("child_id")?,
                school_urn: row.try_get("school_urn")?,
                la_code: row.try_get("la_code")?,
                date: row.try_get("date")?,
                resolved: row.try_get::<i64, _>("resolved")? != 0,
                resolved_on: row.try_get("resolved_on")?,
            })
        })
        .collect()
}

/// Transition information shared for a child with a school.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransitionInfo {
    pub from_urn: Option<String>,
    pub sen: Option<String>,
    pub semh: bool,
    pub safeguarding: bool,
    pub summary: String,
    pub strategies: String,
    pub shared_on: String,
}

/// A child in a school's incoming cohort.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncomingChild {
    pub child_id: String,
    pub upn: String,
    pub given_name: String,
    pub family_name: String,
    pub date_of_birth: String,
    pub la_code: String,
    pub current_school_urn: Option<String>,
    pub destination_confirmed: bool,
    pub sen: Option<String>,
    /// SEN (K or E), SEMH or a safeguarding context: the "vulnerable cohort".
    pub vulnerable: bool,
    pub transition_info: Option<TransitionInfo>,
}

/// The children heading to a school who have not yet arrived, by child id.
pub async fn incoming(
    db: &Database,
    school_urn: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<IncomingChild>, sqlx::Error> {
    let mut sql = Sql::new(
        "select c.child_id, s.upn, s.given_name, s.family_name, s.date_of_birth, s.la_code, s.school_urn, \
                c.confirmed, s.sen, t.from_urn, t.sen as shared_sen, t.semh, t.safeguarding, t.summary, \
                t.strategies, t.shared_on \
           from incoming_cohort c \
           join child_summary s on s.child_id = c.child_id \
           left join transition_info t on t.child_id = c.child_id and t.school_urn = c.school_urn",
    );
    sql.push(" where c.school_urn = ?", [Val::from(school_urn)]);
    sql.filter(" and c.child_id > ?", after);
    sql.push(" order by c.child_id limit ?", [Val::from(limit)]);
    sql.fetch(db)
        .await?
        .iter()
        .map(|row| {
            let summary: Option<String> = row.try_get("summary")?;
            let sen: Option<String> = row.try_get("sen")?;
            let transition_info = match summary {
                Some(summary) => Some(TransitionInfo {
                    from_urn: row.try_get("from_urn")?,
                    sen: row.try_get("shared_sen")?,
                    semh: row.try_get::<Option<i64>, _>("semh")?.unwrap_or(0) != 0,
                    safeguarding: row.try_get::<Option<i64>, _>("safeguarding")?.unwrap_or(0) != 0,
                    summary,
                    strategies: row
                        .try_get::<Option<String>, _>("strategies")?
                        .unwrap_or_default(),
                    shared_on: row
                        .try_get::<Option<String>, _>("shared_on")?
                        .unwrap_or_default(),
                }),
                None => None,
            };
            let needs_sen = |code: &Option<String>| matches!(code.as_deref(), Some("K" | "E"));
            let vulnerable = needs_sen(&sen)
                || transition_info
                    .as_ref()
                    .is_some_and(|info| info.semh || info.safeguarding || needs_sen(&info.sen));
            Ok(IncomingChild {
                child_id: row.try_get("child_id")?,
                upn: row.try_get("upn")?,
                given_name: row.try_get("given_name")?,
                family_name: row.try_get("family_name")?,
                date_of_birth: row.try_get("date_of_birth")?,
                la_code: row.try_get("la_code")?,
                current_school_urn: row.try_get("school_urn")?,
                destination_confirmed: row.try_get::<i64, _>("confirmed")? != 0,
                sen,
                vulnerable,
                transition_info,
            })
        })
        .collect()
}

/// One timeline row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineEntry {
    pub position: i64,
    pub sequence: i64,
    pub event_type: String,
    pub summary: String,
    pub school_urn: Option<String>,
    pub recorded_at: String,
    pub actor_name: String,
    pub actor_role: String,
    pub actor_org: String,
}

/// The child's audit trail across schools, oldest first.
pub async fn timeline(db: &Database, child_id: &str) -> Result<Vec<TimelineEntry>, sqlx::Error> {
    let rows = sqlx::query(
        "select position, sequence, event_type, summary, school_urn, recorded_at, actor_name, actor_role, actor_org \
         from timeline where child_id = $1 order by sequence",
    )
    .bind(child_id)
    .fetch_all(db.any())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(TimelineEntry {
                position: row.try_get("position")?,
                sequence: row.try_get("sequence")?,
                event_type: row.try_get("event_type")?,
                summary: row.try_get("summary")?,
                school_urn: row.try_get("school_urn")?,
                recorded_at: row.try_get("recorded_at")?,
                actor_name: row.try_get("actor_name")?,
                actor_role: row.try_get("actor_role")?,
                actor_org: row.try_get("actor_org")?,
            })
        })
        .collect()
}

/// Every row of a projection's tables, ordered by primary key, as JSON: for
/// comparing a live projection with a rebuild.
pub async fn dump_table(
    db: &Database,
    table: &str,
    order_by: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query(&format!("select * from {table} order by {order_by}"))
        .fetch_all(db.any())
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            use sqlx::Column;
            let mut fields = Vec::new();
            for (index, column) in row.columns().iter().enumerate() {
                let value = row
                    .try_get::<Option<String>, _>(index)
                    .map(|v| format!("{v:?}"))
                    .or_else(|_| {
                        row.try_get::<Option<i64>, _>(index)
                            .map(|v| format!("{v:?}"))
                    })
                    .or_else(|_| {
                        row.try_get::<Option<bool>, _>(index)
                            .map(|v| format!("{v:?}"))
                    })
                    .unwrap_or_else(|error| format!("<{error}>"));
                fields.push(format!("{}={value}", column.name()));
            }
            fields.join(" | ")
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::OpenReasons;
    use crate::read_models::OpenReason;

    fn read(text: &str) -> Vec<Option<(&str, &str)>> {
        OpenReasons::new(text).collect()
    }

    #[test]
    fn open_reasons_are_read_as_the_projection_writes_them() {
        let written = serde_json::to_string(&vec![
            OpenReason {
                reason: "no_destination".into(),
                since: "2026-09-01".into(),
            },
            OpenReason {
                reason: "appeal_pending".into(),
                since: "2026-09-03".into(),
            },
        ])
        .expect("serialisable");
        assert_eq!(
            read(&written),
            vec![
                Some(("no_destination", "2026-09-01")),
                Some(("appeal_pending", "2026-09-03"))
            ]
        );
        assert_eq!(read("[]"), vec![]);
    }

    #[test]
    fn open_reasons_in_another_shape_are_refused_not_misread() {
        for text in [
            "",
            "[",
            r#"[{"since":"2026-09-01","reason":"no_destination"}]"#,
            r#"[{"reason":"no_destination","since":"2026-09-01"}"#,
            r#"[{"reason":"no_destination","since":"2026-09-01"} ]"#,
            r#"[{"reason": "no_destination", "since": "2026-09-01"}]"#,
        ] {
            let items = read(text);
            assert!(items.contains(&None), "{text:?} read as {items:?}");
        }
    }
}
