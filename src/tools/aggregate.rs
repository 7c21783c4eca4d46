//! aggregate_records and count_records: group a table's records (by fields, or a date field
//! bucketed by year / quarter / month / week / day) and compute metrics per group.
//!
//! The pure core ([`aggregate`]) takes the fields' schema and the records; the tools page
//! through Airtable asking only for the fields they need, with progress between pages, and
//! say when `max_scan` capped the scan.

use std::collections::{HashMap, HashSet};

use crate::formula::zone::Zone;
use chrono::{DateTime, Datelike, NaiveDate};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{Json, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::airtable::{ListQuery, Table};
use crate::tools::ToolError;
use crate::tools::cells::{Field, Kind, RecordLike, is_empty, kind_of, render};
use crate::tools::context::{PageReport, field_names};
use crate::tools::filters::{self, Filters};
use crate::tools::handler::AirtableServer;
use crate::tools::links;
use crate::tools::params::{lenient_opt_strings, lenient_u32, opt_nonempty};
use crate::tools::progress::Progress;
use crate::tools::result::{fit_to_budget, json_len};
use crate::tools::validation;
use crate::tools::views::check_opt_view;

/// Default and largest `max_scan`.
pub(crate) const DEFAULT_SCAN: u32 = 10_000;
pub(crate) const MAX_SCAN: u32 = 100_000;
/// Most groups listed; the rest are summed in `other`.
const MAX_GROUPS: usize = 50;
/// Records per list request (Airtable's page size).
const PAGE: usize = 100;

fn default_scan() -> u32 {
    DEFAULT_SCAN
}

/// A date bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Bucket {
    Year,
    Quarter,
    #[default]
    Month,
    Week,
    Day,
}

/// A metric operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    Median,
    Distinct,
    FillRate,
}

impl Op {
    const ALL: [Op; 8] = [
        Op::Count,
        Op::Sum,
        Op::Avg,
        Op::Min,
        Op::Max,
        Op::Median,
        Op::Distinct,
        Op::FillRate,
    ];

    fn parse(s: &str) -> Option<Op> {
        let s = s.trim().to_ascii_lowercase();
        let s = match s.as_str() {
            "average" | "mean" => "avg",
            "count_distinct" | "unique" => "distinct",
            other => other,
        };
        Op::ALL.into_iter().find(|o| o.as_str() == s)
    }

    fn as_str(self) -> &'static str {
        match self {
            Op::Count => "count",
            Op::Sum => "sum",
            Op::Avg => "avg",
            Op::Min => "min",
            Op::Max => "max",
            Op::Median => "median",
            Op::Distinct => "distinct",
            Op::FillRate => "fill_rate",
        }
    }
}

/// Parameters of aggregate_records.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct AggregateRecordsParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Table ID (tbl...) or table name.
    pub(crate) table_id: String,
    /// Fields; dates as "Due:month" (year/quarter/month/week/day).
    #[serde(default, deserialize_with = "lenient_opt_strings")]
    pub(crate) group_by: Option<Vec<String>>,
    /// IANA zone for dates (default UTC).
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) time_zone: Option<String>,
    /// "op:Field", op: count sum avg min max median distinct fill_rate.
    #[serde(default, deserialize_with = "lenient_opt_strings")]
    pub(crate) metrics: Option<Vec<String>>,
    /// Formula selecting records.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) filter_by_formula: Option<String>,
    /// Conditions as in get_records' filters.
    #[serde(default)]
    #[schemars(with = "Option<Map<String, Value>>")]
    pub(crate) filters: Option<Filters>,
    /// View name or ID.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) view: Option<String>,
    /// Most records read.
    #[serde(default = "default_scan", deserialize_with = "lenient_u32")]
    pub(crate) max_scan: u32,
}

/// Parameters of count_records.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct CountRecordsParams {
    /// Base ID (app...).
    pub(crate) base_id: String,
    /// Table ID (tbl...) or table name.
    pub(crate) table_id: String,
    /// Formula selecting records.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) filter_by_formula: Option<String>,
    /// Conditions as in get_records' filters.
    #[serde(default)]
    #[schemars(with = "Option<Map<String, Value>>")]
    pub(crate) filters: Option<Filters>,
    /// View name or ID.
    #[serde(default, deserialize_with = "opt_nonempty")]
    pub(crate) view: Option<String>,
    /// Most records counted.
    #[serde(default = "default_scan", deserialize_with = "lenient_u32")]
    pub(crate) max_scan: u32,
}

/// One group.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub(crate) struct GroupOut {
    /// The group's value for each group_by field: text, or null for empty (dates: the bucket).
    #[schemars(with = "Vec<Value>")]
    pub(crate) key: Vec<Option<String>>,
    /// Records in the group.
    pub(crate) count: usize,
    /// Metric values by label, e.g. {"sum(Amount)": 12.5}.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub(crate) values: Map<String, Value>,
}

/// Result of aggregate_records.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct AggregateOutput {
    /// Records read.
    pub(crate) scanned: usize,
    /// List requests sent to Airtable.
    pub(crate) requests: usize,
    /// True when max_scan stopped the scan: more records match than were read.
    pub(crate) capped: bool,
    /// What each key position is, e.g. ["Status", "Due (month)"].
    pub(crate) group_by: Vec<String>,
    /// Number of groups (all, listed or not).
    pub(crate) group_count: usize,
    /// Groups: by key for date buckets, else largest first.
    pub(crate) groups: Vec<GroupOut>,
    /// The groups not listed, together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) other: Option<GroupOut>,
    /// Metrics over every record read.
    pub(crate) totals: GroupOut,
    /// Caveats (capped scan, groups left out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
}

/// Result of count_records.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct CountOutput {
    /// Records matching (a lower bound when capped).
    pub(crate) count: usize,
    /// True when max_scan stopped the count: more records match.
    pub(crate) capped: bool,
    /// List requests sent to Airtable (100 records each).
    pub(crate) requests: usize,
    /// Caveats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Pure core

/// A group_by position.
#[derive(Debug, Clone)]
pub(crate) struct GroupField {
    pub(crate) name: String,
    pub(crate) kind: Kind,
}

/// A resolved metric.
#[derive(Debug, Clone)]
pub(crate) struct Metric {
    pub(crate) op: Op,
    pub(crate) field: Option<GroupField>,
}

impl Metric {
    fn label(&self) -> String {
        match &self.field {
            Some(f) => format!("{}({})", self.op.as_str(), f.name),
            None => self.op.as_str().to_owned(),
        }
    }
}

/// What to compute.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) group_by: Vec<GroupField>,
    pub(crate) bucket: Bucket,
    pub(crate) tz: Zone,
    pub(crate) metrics: Vec<Metric>,
}

#[derive(Debug, Clone, Default)]
struct MetricAcc {
    filled: usize,
    nums: Vec<f64>,
    texts: Vec<String>,
    distinct: HashSet<String>,
}

impl MetricAcc {
    fn add(&mut self, kind: Kind, v: Option<&Value>) {
        let Some(v) = v.filter(|v| !is_empty(Some(v))) else {
            return;
        };
        self.filled += 1;
        match v {
            Value::Array(items) => {
                for i in items {
                    self.distinct.insert(render(i));
                    if let Some(n) = i.as_f64() {
                        self.nums.push(n);
                    }
                }
            }
            Value::Number(n) => {
                self.distinct.insert(render(v));
                if let Some(n) = n.as_f64() {
                    self.nums.push(n);
                }
            }
            _ => {
                let s = render(v);
                if kind == Kind::Date {
                    self.texts.push(s.clone());
                }
                self.distinct.insert(s);
            }
        }
    }

    fn merge(&mut self, o: &MetricAcc) {
        self.filled += o.filled;
        self.nums.extend_from_slice(&o.nums);
        self.texts.extend(o.texts.iter().cloned());
        self.distinct.extend(o.distinct.iter().cloned());
    }

    fn value(&self, op: Op, count: usize) -> Value {
        let nums = || {
            let mut n = self.nums.clone();
            n.sort_by(f64::total_cmp);
            n
        };
        match op {
            Op::Count => json!(self.filled),
            Op::Sum => num(self.nums.iter().sum()),
            Op::Avg if self.nums.is_empty() => Value::Null,
            Op::Avg => num(self.nums.iter().sum::<f64>() / self.nums.len() as f64),
            Op::Min | Op::Max if !self.nums.is_empty() => {
                let n = nums();
                num(if op == Op::Min { n[0] } else { n[n.len() - 1] })
            }
            Op::Min => self.texts.iter().min().map_or(Value::Null, |s| json!(s)),
            Op::Max => self.texts.iter().max().map_or(Value::Null, |s| json!(s)),
            Op::Median if self.nums.is_empty() => Value::Null,
            Op::Median => {
                let n = nums();
                let l = n.len();
                num(if l % 2 == 1 {
                    n[l / 2]
                } else {
                    (n[l / 2 - 1] + n[l / 2]) / 2.0
                })
            }
            Op::Distinct => json!(self.distinct.len()),
            Op::FillRate if count == 0 => json!(0.0),
            Op::FillRate => num_round(self.filled as f64 / count as f64, 1000.0),
        }
    }
}

fn num(f: f64) -> Value {
    num_round(f, 1_000_000.0)
}

fn num_round(f: f64, scale: f64) -> Value {
    let r = (f * scale).round() / scale;
    serde_json::Number::from_f64(r).map_or(Value::Null, Value::Number)
}

#[derive(Debug, Clone, Default)]
struct Acc {
    count: usize,
    metrics: Vec<MetricAcc>,
}

impl Acc {
    fn new(n: usize) -> Self {
        Acc {
            count: 0,
            metrics: vec![MetricAcc::default(); n],
        }
    }

    fn add<R: RecordLike>(&mut self, plan: &Plan, r: &R) {
        self.count += 1;
        for (m, acc) in plan.metrics.iter().zip(self.metrics.iter_mut()) {
            match &m.field {
                Some(f) => acc.add(f.kind, r.cells().get(&f.name)),
                None => acc.filled += 1,
            }
        }
    }

    fn merge(&mut self, o: &Acc) {
        self.count += o.count;
        for (a, b) in self.metrics.iter_mut().zip(&o.metrics) {
            a.merge(b);
        }
    }

    fn out(&self, plan: &Plan, key: Vec<Option<String>>) -> GroupOut {
        let mut values = Map::new();
        for (m, acc) in plan.metrics.iter().zip(&self.metrics) {
            if m.op == Op::Count && m.field.is_none() {
                continue; // `count` says it already
            }
            values.insert(m.label(), acc.value(m.op, self.count));
        }
        GroupOut {
            key,
            count: self.count,
            values,
        }
    }
}

/// The date bucket of an Airtable date ("2024-05-01") or date-time (converted to `tz`).
pub(crate) fn bucket_of(s: &str, b: Bucket, tz: &Zone) -> Option<String> {
    let d: NaiveDate = if s.len() == 10 {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?
    } else {
        DateTime::parse_from_rfc3339(s)
            .ok()?
            .with_timezone(tz)
            .date_naive()
    };
    Some(match b {
        Bucket::Year => format!("{:04}", d.year()),
        Bucket::Quarter => format!("{:04}-Q{}", d.year(), d.month0() / 3 + 1),
        Bucket::Month => format!("{:04}-{:02}", d.year(), d.month()),
        Bucket::Week => {
            let w = d.iso_week();
            format!("{:04}-W{:02}", w.year(), w.week())
        }
        Bucket::Day => d.format("%Y-%m-%d").to_string(),
    })
}

/// The keys a cell puts its record under: one per item for multi-valued cells.
fn keys_of(f: &GroupField, v: Option<&Value>, plan: &Plan) -> Vec<Option<String>> {
    let Some(v) = v.filter(|v| !is_empty(Some(v))) else {
        return vec![None];
    };
    let one = |v: &Value| -> String {
        let s = render(v);
        if f.kind == Kind::Date {
            bucket_of(&s, plan.bucket, &plan.tz).unwrap_or(s)
        } else {
            s
        }
    };
    match v {
        Value::Array(items) if !items.is_empty() => {
            let mut out: Vec<Option<String>> = Vec::new();
            for i in items {
                let k = Some(one(i));
                if !out.contains(&k) {
                    out.push(k);
                }
            }
            out
        }
        _ => vec![Some(one(v))],
    }
}

/// The aggregation of some records.
#[derive(Debug, Clone)]
pub(crate) struct Aggregation {
    /// Every group, sorted (by key with a date position, else largest first).
    groups: Vec<(Vec<Option<String>>, Acc)>,
    totals: Acc,
}

/// Group and measure `records` as `plan` says.
pub(crate) fn aggregate<R: RecordLike>(plan: &Plan, records: &[R]) -> Aggregation {
    let n = plan.metrics.len();
    let mut index: HashMap<Vec<Option<String>>, usize> = HashMap::new();
    let mut groups: Vec<(Vec<Option<String>>, Acc)> = Vec::new();
    let mut totals = Acc::new(n);
    for r in records {
        totals.add(plan, r);
        // The cartesian product of each position's keys.
        let mut keys: Vec<Vec<Option<String>>> = vec![Vec::new()];
        for f in &plan.group_by {
            let ks = keys_of(f, r.cells().get(&f.name), plan);
            keys = keys
                .into_iter()
                .flat_map(|prefix| {
                    ks.iter().map(move |k| {
                        let mut p = prefix.clone();
                        p.push(k.clone());
                        p
                    })
                })
                .collect();
        }
        for key in keys {
            let i = *index.entry(key.clone()).or_insert_with(|| {
                groups.push((key, Acc::new(n)));
                groups.len() - 1
            });
            groups[i].1.add(plan, r);
        }
    }
    let by_key = plan.group_by.iter().any(|f| f.kind == Kind::Date);
    // Empty keys (None) sort last.
    let cmp_keys = |a: &Vec<Option<String>>, b: &Vec<Option<String>>| {
        a.iter()
            .zip(b)
            .map(|(x, y)| match (x, y) {
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    };
    if by_key {
        groups.sort_by(|a, b| cmp_keys(&a.0, &b.0));
    } else {
        groups.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(cmp_keys(&a.0, &b.0)));
    }
    Aggregation { groups, totals }
}

impl Aggregation {
    /// Number of groups.
    pub(crate) fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// The first `k` groups, the rest together as `other`, and the totals.
    pub(crate) fn output(
        &self,
        plan: &Plan,
        k: usize,
    ) -> (Vec<GroupOut>, Option<GroupOut>, GroupOut) {
        let k = k.min(self.groups.len());
        let listed = self.groups[..k]
            .iter()
            .map(|(key, acc)| acc.out(plan, key.clone()))
            .collect();
        let other = (k < self.groups.len()).then(|| {
            let mut acc = Acc::new(plan.metrics.len());
            for (_, a) in &self.groups[k..] {
                acc.merge(a);
            }
            acc.out(plan, Vec::new())
        });
        (listed, other, self.totals.out(plan, Vec::new()))
    }
}

/// Requests a scan of `scanned` records took (100 a page, at least one).
fn requests_for(scanned: usize) -> usize {
    scanned.div_ceil(PAGE).max(1)
}

fn check_scan(max_scan: u32) -> Result<usize, ToolError> {
    if max_scan == 0 || max_scan > MAX_SCAN {
        return Err(ToolError::Invalid(format!(
            "max_scan must be between 1 and {MAX_SCAN} (got {max_scan})."
        )));
    }
    Ok(max_scan as usize)
}

/// "Due:month" -> ("Due", Some(Month)); a field whose name has a colon stays whole.
fn split_bucket<'a>(t: &Table, g: &'a str) -> (&'a str, Option<Bucket>) {
    if validation::find_field(t, g).is_none()
        && let Some((f, b)) = g.rsplit_once(':')
        && let Some(b) = BUCKETS
            .into_iter()
            .find(|x| bucket_name(*x).eq_ignore_ascii_case(b.trim()))
    {
        return (f.trim(), Some(b));
    }
    (g, None)
}

fn resolve_field(t: &Table, name: &str, role: &str) -> Result<GroupField, ToolError> {
    let names = field_names(t, &[name.to_owned()], role)?;
    let f: Option<&Field> = names
        .first()
        .and_then(|n| t.fields.iter().find(|f| &f.name == n));
    match f {
        Some(f) => Ok(GroupField {
            name: f.name.clone(),
            kind: kind_of(f),
        }),
        None => Err(ToolError::Invalid(format!(
            "{role}: field {name:?} was not found in table {:?}.",
            t.name
        ))),
    }
}

#[tool_router(router = aggregate_router, vis = "pub(crate)")]
impl AirtableServer {
    /// aggregate_records
    #[tool(
        name = "aggregate_records",
        meta = crate::tools::apps::chart_meta(),
        title = "Aggregate records",
        description = "Group records by fields (each multi-select/link item counts) with a count and metrics per group (top 50 + `other`) and totals. capped=true: max_scan stopped the scan.",
        annotations(
            title = "Aggregate records",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn aggregate_records(
        &self,
        Parameters(p): Parameters<AggregateRecordsParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<AggregateOutput>, ToolError> {
        let base = self.ctx.base(&p.base_id)?;
        let max = check_scan(p.max_scan)?;
        let tz: Zone = match p.time_zone.as_deref().map(str::trim) {
            None => Zone::UTC,
            Some(s) => s.parse().map_err(|_| {
                ToolError::Invalid(format!(
                    "time_zone {s:?} is not an IANA time zone (e.g. \"Europe/Paris\", \"America/New_York\", \"UTC\")."
                ))
            })?,
        };
        let progress = Progress::new(&ctx);
        let schema = self.ctx.schema(&base).await?;
        let table = validation::resolve_table(&schema, base.as_ref(), &p.table_id)?;
        check_opt_view(Some(table), p.view.as_ref())?;
        let formula = filters::read_formula(
            Some(table),
            p.filters.as_ref(),
            p.filter_by_formula.as_deref(),
        )?;
        let mut bucket: Option<Bucket> = None;
        let mut group_by = Vec::new();
        for g in p.group_by.unwrap_or_default() {
            let (f, b) = split_bucket(table, &g);
            let f = resolve_field(table, f, "group_by")?;
            if let Some(b) = b {
                if f.kind != Kind::Date {
                    return Err(ToolError::Invalid(format!(
                        "group_by {g:?}: {:?} is not a date field, so it takes no bucket.",
                        f.name
                    )));
                }
                if bucket.is_some_and(|x| x != b) {
                    return Err(ToolError::Invalid(
                        "group_by: use one bucket (year, quarter, month, week or day) for every date field.".into(),
                    ));
                }
                bucket = Some(b);
            }
            group_by.push(f);
        }
        let mut metrics = Vec::new();
        for m in p.metrics.unwrap_or_default() {
            let (op, field) = match m.split_once(':') {
                Some((op, f)) => (op, Some(f.trim())),
                None => (m.as_str(), None),
            };
            let Some(op) = Op::parse(op) else {
                return Err(ToolError::Invalid(format!(
                    "metric {m:?}: unknown operation; use one of count, sum, avg, min, max, median, distinct, fill_rate, as \"sum:Amount\"."
                )));
            };
            let field = match (field.filter(|f| !f.is_empty()), op) {
                (Some(f), _) => Some(resolve_field(table, f, "metrics")?),
                (None, Op::Count) => None,
                (None, op) => {
                    return Err(ToolError::Invalid(format!(
                        "metric {m:?} needs a field, e.g. \"{}:Amount\".",
                        op.as_str()
                    )));
                }
            };
            metrics.push(Metric { op, field });
        }
        let plan = Plan {
            group_by,
            bucket: bucket.unwrap_or_default(),
            tz,
            metrics,
        };
        let mut fields: Vec<String> = Vec::new();
        for f in plan
            .group_by
            .iter()
            .chain(plan.metrics.iter().filter_map(|m| m.field.as_ref()))
        {
            if !fields.contains(&f.name) {
                fields.push(f.name.clone());
            }
        }
        if fields.is_empty() {
            fields.extend(primary(table));
        }
        let query = ListQuery {
            view: p.view.clone(),
            fields,
            filter_by_formula: formula,
            ..ListQuery::default()
        };
        let read = self
            .ctx
            .read_records(
                &base,
                table.id.as_ref(),
                query,
                max,
                PageReport::every_page(&progress, "aggregate_records"),
            )
            .await?;
        let capped = read.has_more();
        let scanned = read.records.len();
        let mut read = read;
        // Linked records group by their primary field value, not their IDs.
        let link_note = if plan.group_by.iter().any(|f| f.kind == Kind::Link) {
            let tctx = self.ctx.table_ctx(&p.base_id, &p.table_id).await?;
            links::expand(&self.ctx, &tctx, true, &mut read.records).await?
        } else {
            None
        };
        let agg = aggregate(&plan, &read.records);
        let (mut groups, mut other, totals) = agg.output(&plan, MAX_GROUPS);
        let budget = self.ctx.budget().saturating_sub(json_len(&totals) + 400);
        let (kept, cut) = fit_to_budget(groups, budget);
        groups = kept;
        if cut > 0 {
            other = agg.output(&plan, groups.len()).1;
        }
        let mut notes: Vec<String> = Vec::new();
        if capped {
            notes.push(format!(
                "Stopped at max_scan={max} records: more match, so counts are partial. Raise max_scan (up to {MAX_SCAN}) or narrow with filters, filter_by_formula or view."
            ));
        }
        if groups.len() < agg.group_count() {
            notes.push(format!(
                "{} of {} groups listed; the rest are summed in `other`.",
                groups.len(),
                agg.group_count()
            ));
        }
        notes.extend(link_note);
        let labels = plan
            .group_by
            .iter()
            .map(|f| {
                if f.kind == Kind::Date {
                    format!("{} ({})", f.name, bucket_name(plan.bucket))
                } else {
                    f.name.clone()
                }
            })
            .collect();
        Ok(Json(AggregateOutput {
            scanned,
            requests: requests_for(scanned),
            capped,
            group_by: labels,
            group_count: agg.group_count(),
            groups,
            other,
            totals,
            note: (!notes.is_empty()).then(|| notes.join(" ")),
        }))
    }

    /// count_records
    #[tool(
        name = "count_records",
        title = "Count records",
        description = "Count the records of a table, a view or a formula. Cheap: asks for one field, 100 records a request (`requests`). Stops at max_scan: capped=true means at least `count`. Counts per group: aggregate_records.",
        annotations(
            title = "Count records",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub(crate) async fn count_records(
        &self,
        Parameters(p): Parameters<CountRecordsParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<CountOutput>, ToolError> {
        let base = self.ctx.base(&p.base_id)?;
        let max = check_scan(p.max_scan)?;
        let progress = Progress::new(&ctx);
        let schema = self.ctx.schema(&base).await?;
        let table = validation::resolve_table(&schema, base.as_ref(), &p.table_id)?;
        check_opt_view(Some(table), p.view.as_ref())?;
        let formula = filters::read_formula(
            Some(table),
            p.filters.as_ref(),
            p.filter_by_formula.as_deref(),
        )?;
        let query = ListQuery {
            view: p.view.clone(),
            fields: primary(table).into_iter().collect(),
            filter_by_formula: formula,
            ..ListQuery::default()
        };
        let read = self
            .ctx
            .read_records(
                &base,
                table.id.as_ref(),
                query,
                max,
                PageReport::between_pages(&progress, "count_records"),
            )
            .await?;
        let capped = read.has_more();
        let count = read.records.len();
        Ok(Json(CountOutput {
            count,
            capped,
            requests: requests_for(count),
            note: capped.then(|| {
                format!("Stopped at max_scan={max}: at least {count} records match. Raise max_scan (up to {MAX_SCAN}) for the exact count.")
            }),
        }))
    }
}

/// The primary field's name (the one field a count asks for).
fn primary(t: &Table) -> Option<String> {
    t.fields
        .iter()
        .find(|f| f.id == t.primary_field_id)
        .or_else(|| t.fields.first())
        .map(|f| f.name.clone())
}

const BUCKETS: [Bucket; 5] = [
    Bucket::Year,
    Bucket::Quarter,
    Bucket::Month,
    Bucket::Week,
    Bucket::Day,
];

fn bucket_name(b: Bucket) -> &'static str {
    match b {
        Bucket::Year => "year",
        Bucket::Quarter => "quarter",
        Bucket::Month => "month",
        Bucket::Week => "week",
        Bucket::Day => "day",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::tools::cells::PlainRecord;

    fn rec(v: Value) -> PlainRecord {
        PlainRecord {
            id: String::new(),
            fields: v.as_object().cloned().unwrap(),
        }
    }

    fn gf(name: &str, kind: Kind) -> GroupField {
        GroupField {
            name: name.into(),
            kind,
        }
    }

    #[test]
    fn buckets() {
        let utc = &Zone::UTC;
        assert_eq!(
            bucket_of("2024-05-01", Bucket::Quarter, utc).unwrap(),
            "2024-Q2"
        );
        assert_eq!(
            bucket_of("2024-12-30", Bucket::Week, utc).unwrap(),
            "2025-W01"
        );
        assert_eq!(bucket_of("2024-05-01", Bucket::Year, utc).unwrap(), "2024");
        // 23:30 UTC on April 30 is May 1 in Paris.
        let paris: &Zone = &"Europe/Paris".parse().unwrap();
        assert_eq!(
            bucket_of("2024-04-30T23:30:00.000Z", Bucket::Month, paris).unwrap(),
            "2024-05"
        );
        assert_eq!(
            bucket_of("2024-04-30T23:30:00.000Z", Bucket::Day, utc).unwrap(),
            "2024-04-30"
        );
    }

    #[test]
    fn multi_select_items_each_count_and_metrics_follow() {
        let plan = Plan {
            group_by: vec![gf("Tags", Kind::MultiSelect)],
            bucket: Bucket::Month,
            tz: Zone::UTC,
            metrics: vec![
                Metric {
                    op: Op::Sum,
                    field: Some(gf("N", Kind::Number)),
                },
                Metric {
                    op: Op::Median,
                    field: Some(gf("N", Kind::Number)),
                },
                Metric {
                    op: Op::FillRate,
                    field: Some(gf("N", Kind::Number)),
                },
            ],
        };
        let rs = vec![
            rec(json!({"Tags": ["a", "b"], "N": 1})),
            rec(json!({"Tags": ["a"], "N": 3})),
            rec(json!({"Tags": ["a"]})),
            rec(json!({"N": 10})),
        ];
        let agg = aggregate(&plan, &rs);
        let (groups, other, totals) = agg.output(&plan, 2);
        assert_eq!(groups[0].key, vec![Some("a".to_owned())]);
        assert_eq!(groups[0].count, 3);
        assert_eq!(groups[0].values["sum(N)"], json!(4.0));
        assert_eq!(groups[0].values["median(N)"], json!(2.0));
        assert_eq!(groups[0].values["fill_rate(N)"], json!(0.667));
        // b (1) and the empty group (1): the empty key sorts after b on a tie.
        assert_eq!(groups[1].key, vec![Some("b".to_owned())]);
        let other = other.unwrap();
        assert_eq!(other.count, 1);
        assert_eq!(other.values["sum(N)"], json!(10.0));
        assert_eq!(totals.count, 4);
        assert_eq!(totals.values["sum(N)"], json!(14.0));
    }
}
