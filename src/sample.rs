//! Deterministic CityForge sample data of a chosen size, for the `demo` command, tests and benchmarks.
//!
//! [`load`] fills an empty CityForge schema (see [`CITYFORGE_SCHEMA_SQL`]) with about `rows` rows
//! spread over all 20 model tables and the `card_tags` join table, in the proportions of a real
//! city directory (forum posts, reviews, card tags, cards and help-wanted comments dominate; users
//! are about 5 %). The rows are generated on the fly by a small hand-written PRNG seeded with a
//! constant, so the same `rows` always produces byte-identical data, independent of crate versions.
//!
//! The data deliberately exercises every corner of the export format: NULLs in nullable columns,
//! empty strings, non-ASCII text and emoji, quotes, backslashes, tabs, newlines, CRLF, control
//! characters, U+2028/U+2029, bcrypt-like password hashes, timestamps with and without fractional
//! seconds, `timestamptz` values written with several UTC offsets, tri-state booleans and
//! self-referencing `help_wanted_comments` whose `parent_id` points *forward* to a higher id.
//!
//! Tables are streamed parent-first with `COPY ... FROM STDIN` (text format) in ~256 KiB chunks;
//! no table is ever held in memory as a whole.

use std::borrow::Cow;
use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt;
use tokio_postgres::Client;

/// The CityForge reference schema (20 model tables plus `card_tags`), as plain SQL.
///
/// Used by [`create_schema`] and by anything that needs a fresh CityForge database, so that the
/// sample data and the schema can never drift apart.
pub const CITYFORGE_SCHEMA_SQL: &str = include_str!("sql/cityforge_schema.sql");

/// Every table of the CityForge schema in parent-first (foreign-key safe) load order.
///
/// This is the order [`load`] fills the tables in and the order of [`SampleSummary::tables`].
pub const TABLES: [&str; 21] = [
    "users",
    "tags",
    "cards",
    "card_tags",
    "card_submissions",
    "card_modifications",
    "reviews",
    "resource_categories",
    "quick_access_items",
    "resource_items",
    "resource_config",
    "forum_categories",
    "forum_category_requests",
    "forum_threads",
    "forum_posts",
    "forum_reports",
    "help_wanted_posts",
    "help_wanted_comments",
    "help_wanted_reports",
    "indexing_jobs",
    "token_blacklist",
];

/// Target size of one `COPY` data message.
const CHUNK_BYTES: usize = 256 * 1024;

/// Seed of the whole data set. Changing it changes every generated value.
const SEED: u64 = 0xC17F_0A6E_5EED_2024;

/// Row counts per table, as planned by [`plan`] or loaded by [`load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSummary {
    /// `(table name, row count)` for every table, in the parent-first order of [`TABLES`].
    pub tables: Vec<(String, u64)>,
}

impl SampleSummary {
    /// Total number of rows over all tables.
    pub fn total(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }

    /// Row count of one table, or `None` if the table is not part of the summary.
    pub fn rows(&self, table: &str) -> Option<u64> {
        self.tables
            .iter()
            .find(|(name, _)| name == table)
            .map(|(_, n)| *n)
    }
}

/// A database error while creating the schema or loading sample data, with what was being done.
///
/// The underlying [`tokio_postgres::Error`] is available as the error [`source`](std::error::Error::source)
/// and through [`SampleError::postgres`].
#[derive(Debug, thiserror::Error)]
#[error("sample data: {context}")]
pub struct SampleError {
    context: String,
    table: Option<&'static str>,
    #[source]
    source: tokio_postgres::Error,
}

impl SampleError {
    fn new(context: String, table: Option<&'static str>, source: tokio_postgres::Error) -> Self {
        SampleError {
            context,
            table,
            source,
        }
    }

    /// The table being loaded when the error happened, if any.
    pub fn table(&self) -> Option<&str> {
        self.table
    }

    /// What was being done, e.g. ``COPY into `forum_posts` ``.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The underlying PostgreSQL error.
    pub fn postgres(&self) -> &tokio_postgres::Error {
        &self.source
    }
}

/// Creates the CityForge schema ([`CITYFORGE_SCHEMA_SQL`]) in the connected database.
///
/// The database should use the UTF8 encoding: the sample data is full of non-ASCII text and the
/// `varchar(n)` limits are counted in characters.
pub async fn create_schema(client: &Client) -> Result<(), SampleError> {
    client
        .batch_execute(CITYFORGE_SCHEMA_SQL)
        .await
        .map_err(|e| SampleError::new("creating the CityForge schema".into(), None, e))
}

/// The row counts [`load`] will produce for `rows`, without touching a database.
///
/// Every table gets at least one row, so the total is `max(rows, 21)`; otherwise it is exactly
/// `rows`.
pub fn plan(rows: u64) -> SampleSummary {
    let plan = Plan::new(rows);
    SampleSummary {
        tables: Table::ALL
            .iter()
            .map(|&t| (t.name().to_string(), plan.rows(t)))
            .collect(),
    }
}

/// Fills an empty CityForge schema with deterministic sample data, about `rows` rows in total.
///
/// Tables are loaded parent-first in one transaction with `COPY ... FROM STDIN`, honouring every
/// foreign key, NOT NULL and UNIQUE constraint of the schema; afterwards every `id` sequence is set
/// past `max(id)` (so the application can insert new rows) and the tables are `ANALYZE`d.
/// See [`plan`] for the exact per-table counts. The same `rows` always yields the same data.
///
/// The client must not be inside a transaction already; on error the load is rolled back.
pub async fn load(client: &Client, rows: u64) -> Result<SampleSummary, SampleError> {
    let plan = Plan::new(rows);
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| SampleError::new("starting the load transaction".into(), None, e))?;
    let loaded = load_in_transaction(client, &plan).await;
    let summary = match loaded {
        Ok(summary) => summary,
        Err(e) => {
            // Best effort: the original error is the interesting one.
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(e);
        }
    };
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| SampleError::new("committing the sample data".into(), None, e))?;
    let analyze = format!("ANALYZE {}", TABLES.join(", "));
    client
        .batch_execute(&analyze)
        .await
        .map_err(|e| SampleError::new("analyzing the sample tables".into(), None, e))?;
    Ok(summary)
}

async fn load_in_transaction(client: &Client, plan: &Plan) -> Result<SampleSummary, SampleError> {
    let mut tables = Vec::with_capacity(Table::ALL.len());
    for table in Table::ALL {
        let n = copy_table(client, table, plan).await?;
        tables.push((table.name().to_string(), n));
    }
    let mut setval = String::new();
    for table in Table::ALL {
        if table != Table::CardTags {
            let name = table.name();
            let _ = writeln!(
                setval,
                "SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}));"
            );
        }
    }
    client
        .batch_execute(&setval)
        .await
        .map_err(|e| SampleError::new("advancing the id sequences".into(), None, e))?;
    Ok(SampleSummary { tables })
}

/// Streams one table with `COPY ... FROM STDIN`; returns the number of rows the server stored.
async fn copy_table(client: &Client, table: Table, plan: &Plan) -> Result<u64, SampleError> {
    let name = table.name();
    let err = |e| SampleError::new(format!("COPY into `{name}`"), Some(name), e);
    let sql = format!("COPY {name} ({}) FROM STDIN", table.columns());
    let sink = client
        .copy_in::<_, Bytes>(sql.as_str())
        .await
        .map_err(err)?;
    futures_util::pin_mut!(sink);
    let mut gen = Gen::new(table, plan);
    let mut out = RowBuf::with_capacity(CHUNK_BYTES + 16 * 1024);
    for unit in 1..=gen.units() {
        gen.write(unit, &mut out);
        if out.len() >= CHUNK_BYTES {
            sink.send(out.take()).await.map_err(err)?;
        }
    }
    if !out.is_empty() {
        sink.send(out.take()).await.map_err(err)?;
    }
    sink.finish().await.map_err(err)
}

// ---------------------------------------------------------------------------------------------
// Tables and the size plan
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Table {
    Users,
    Tags,
    Cards,
    CardTags,
    CardSubmissions,
    CardModifications,
    Reviews,
    ResourceCategories,
    QuickAccessItems,
    ResourceItems,
    ResourceConfig,
    ForumCategories,
    ForumCategoryRequests,
    ForumThreads,
    ForumPosts,
    ForumReports,
    HelpWantedPosts,
    HelpWantedComments,
    HelpWantedReports,
    IndexingJobs,
    TokenBlacklist,
}

impl Table {
    /// Parent-first order; matches [`TABLES`].
    const ALL: [Table; 21] = [
        Table::Users,
        Table::Tags,
        Table::Cards,
        Table::CardTags,
        Table::CardSubmissions,
        Table::CardModifications,
        Table::Reviews,
        Table::ResourceCategories,
        Table::QuickAccessItems,
        Table::ResourceItems,
        Table::ResourceConfig,
        Table::ForumCategories,
        Table::ForumCategoryRequests,
        Table::ForumThreads,
        Table::ForumPosts,
        Table::ForumReports,
        Table::HelpWantedPosts,
        Table::HelpWantedComments,
        Table::HelpWantedReports,
        Table::IndexingJobs,
        Table::TokenBlacklist,
    ];

    fn name(self) -> &'static str {
        TABLES[self as usize]
    }

    /// The columns the generator writes, in schema order.
    fn columns(self) -> &'static str {
        match self {
            Table::Users => "id, email, password_hash, first_name, last_name, role, is_supporter_flag, is_active, created_date, last_login",
            Table::Tags => "id, name, created_date",
            Table::Cards => "id, name, description, website_url, phone_number, email, address, address_override_url, contact_name, featured, image_url, created_by, approved, approved_by, approved_date, created_date, updated_date",
            Table::CardTags => "card_id, tag_id",
            Table::CardSubmissions => "id, name, description, website_url, phone_number, email, address, address_override_url, contact_name, image_url, tags_text, status, submitted_by, reviewed_by, review_notes, card_id, created_date, reviewed_date",
            Table::CardModifications => "id, card_id, name, description, website_url, phone_number, email, address, address_override_url, contact_name, image_url, tags_text, status, submitted_by, reviewed_by, review_notes, created_date, reviewed_date",
            Table::Reviews => "id, card_id, user_id, rating, title, comment, reported, reported_by, reported_date, reported_reason, hidden, created_date, updated_date",
            Table::ResourceCategories => "id, name, display_order, created_date",
            Table::QuickAccessItems => "id, identifier, title, subtitle, phone, color, icon, display_order, is_active, created_date",
            Table::ResourceItems => "id, title, url, description, category, category_id, phone, address, icon, display_order, is_active, created_date, updated_date",
            Table::ResourceConfig => "id, key, value, description, created_date, updated_date",
            Table::ForumCategories => "id, name, description, slug, display_order, is_active, created_by, created_date, updated_date",
            Table::ForumCategoryRequests => "id, name, description, justification, status, requested_by, reviewed_by, created_date, reviewed_date, review_notes, category_id",
            Table::ForumThreads => "id, category_id, title, slug, is_pinned, is_locked, report_count, created_by, created_date, updated_date",
            Table::ForumPosts => "id, thread_id, content, is_first_post, report_count, created_by, created_date, updated_date, edited_by, edited_date",
            Table::ForumReports => "id, thread_id, post_id, reason, details, status, reported_by, reviewed_by, created_date, reviewed_date, resolution_notes",
            Table::HelpWantedPosts => "id, title, description, category, status, location, budget, contact_preference, report_count, created_by, created_date, updated_date",
            Table::HelpWantedComments => "id, post_id, content, parent_id, created_by, created_date, updated_date",
            Table::HelpWantedReports => "id, post_id, reason, details, status, reported_by, reviewed_by, created_date, reviewed_date, resolution_notes",
            Table::IndexingJobs => "id, resource_id, status, pages_indexed, total_pages, last_error, started_at, completed_at, retry_count, created_date, updated_date",
            Table::TokenBlacklist => "id, jti, token_type, user_id, revoked_at, expires_at",
        }
    }

    /// `(weight in rows per ~10 000, maximum row count)`. Configuration-like tables are capped: a
    /// real directory has a handful of categories however many cards it lists.
    fn share(self) -> (u64, u64) {
        const NO_CAP: u64 = u64::MAX;
        match self {
            Table::Users => (500, NO_CAP),
            Table::Tags => (100, 5_000),
            Table::Cards => (1000, NO_CAP),
            Table::CardTags => (1400, NO_CAP),
            Table::CardSubmissions => (200, NO_CAP),
            Table::CardModifications => (200, NO_CAP),
            Table::Reviews => (1500, NO_CAP),
            Table::ResourceCategories => (2, 40),
            Table::QuickAccessItems => (2, 24),
            Table::ResourceItems => (50, NO_CAP),
            Table::ResourceConfig => (2, 60),
            Table::ForumCategories => (3, 50),
            Table::ForumCategoryRequests => (10, NO_CAP),
            Table::ForumThreads => (300, NO_CAP),
            Table::ForumPosts => (2000, NO_CAP),
            Table::ForumReports => (100, NO_CAP),
            Table::HelpWantedPosts => (300, NO_CAP),
            Table::HelpWantedComments => (1200, NO_CAP),
            Table::HelpWantedReports => (100, NO_CAP),
            Table::IndexingJobs => (50, NO_CAP),
            Table::TokenBlacklist => (400, NO_CAP),
        }
    }
}

/// Row counts per table for a requested total.
#[derive(Debug, Clone)]
struct Plan {
    counts: [u64; 21],
}

impl Plan {
    fn new(rows: u64) -> Plan {
        let total_weight: u64 = Table::ALL.iter().map(|t| t.share().0).sum();
        let mut c = [0u64; 21];
        for t in Table::ALL {
            let (weight, cap) = t.share();
            let raw = u128::from(rows) * u128::from(weight) / u128::from(total_weight);
            c[t as usize] = u64::try_from(raw).unwrap_or(u64::MAX).clamp(1, cap);
        }
        let (cards, tags, card_tags, posts) = (
            Table::Cards as usize,
            Table::Tags as usize,
            Table::CardTags as usize,
            Table::ForumPosts as usize,
        );
        loop {
            // (card_id, tag_id) is the primary key of card_tags.
            c[card_tags] = c[card_tags].min(c[cards].saturating_mul(c[tags])).max(1);
            let sum: u64 = c.iter().sum();
            if sum <= rows {
                c[posts] += rows - sum;
                break;
            }
            // Too many rows (the "at least one row each" floor): shrink the biggest table.
            let (biggest, &n) = c
                .iter()
                .enumerate()
                .max_by_key(|&(i, &n)| (n, std::cmp::Reverse(i)))
                .expect("21 tables");
            if n <= 1 {
                break;
            }
            c[biggest] -= 1;
        }
        Plan { counts: c }
    }

    fn rows(&self, t: Table) -> u64 {
        self.counts[t as usize]
    }
}

// ---------------------------------------------------------------------------------------------
// PRNG
// ---------------------------------------------------------------------------------------------

/// SplitMix64 finaliser; a bijection on `u64`.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A bijection on `u32` (lowbias32), used to make unique but random-looking identifiers.
fn scramble32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7FEB_352D);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846C_A68B);
    x ^ (x >> 16)
}

/// SplitMix64: tiny, fast and fixed forever, so the sample data never changes with crate versions.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `pct` percent.
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// An id in `1..=n`, uniform.
    fn id(&mut self, n: u64) -> i64 {
        1 + self.below(n) as i64
    }

    /// An id in `1..=n`, skewed towards small (older, more popular) ids.
    fn popular_id(&mut self, n: u64) -> i64 {
        1 + self.below(n).min(self.below(n)) as i64
    }
}

// ---------------------------------------------------------------------------------------------
// COPY text format writer
// ---------------------------------------------------------------------------------------------

/// Accumulates rows in PostgreSQL's COPY text format: fields separated by tabs, rows ended by a
/// newline, `\N` for NULL, and backslash, tab, newline and carriage return escaped.
struct RowBuf(BytesMut);

impl RowBuf {
    fn with_capacity(n: usize) -> RowBuf {
        RowBuf(BytesMut::with_capacity(n))
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn take(&mut self) -> Bytes {
        self.0.split().freeze()
    }

    fn int(&mut self, v: i64) {
        let mut b = itoa::Buffer::new();
        self.0.extend_from_slice(b.format(v).as_bytes());
        self.0.put_u8(b'\t');
    }

    fn opt_int(&mut self, v: Option<i64>) {
        match v {
            Some(v) => self.int(v),
            None => self.null(),
        }
    }

    fn null(&mut self) {
        self.0.extend_from_slice(b"\\N\t");
    }

    fn text(&mut self, s: &str) {
        escape_copy_text(&mut self.0, s);
        self.0.put_u8(b'\t');
    }

    fn opt_text(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }

    /// A `varchar(max)` value: cut to at most `max` characters.
    fn varchar(&mut self, s: &str, max: usize) {
        self.text(truncate_chars(s, max));
    }

    fn boolean(&mut self, v: Option<bool>) {
        self.0.extend_from_slice(match v {
            Some(true) => b"t\t",
            Some(false) => b"f\t",
            None => b"\\N\t",
        });
    }

    /// A `timestamp` (microseconds since the Unix epoch).
    fn ts(&mut self, v: Option<i64>) {
        match v {
            Some(us) => {
                write_timestamp(&mut self.0, us);
                self.0.put_u8(b'\t');
            }
            None => self.null(),
        }
    }

    /// A `timestamptz`: the instant `us`, written as local time at `offset_min` minutes from UTC.
    fn tstz(&mut self, v: Option<(i64, i32)>) {
        match v {
            Some((us, offset_min)) => {
                write_timestamp(&mut self.0, us + i64::from(offset_min) * 60_000_000);
                let sign = if offset_min < 0 { b'-' } else { b'+' };
                let off = offset_min.unsigned_abs();
                self.0.put_u8(sign);
                push_2digits(&mut self.0, off / 60);
                if off % 60 != 0 {
                    self.0.put_u8(b':');
                    push_2digits(&mut self.0, off % 60);
                }
                self.0.put_u8(b'\t');
            }
            None => self.null(),
        }
    }

    fn end_row(&mut self) {
        let last = self.0.len() - 1;
        debug_assert_eq!(self.0[last], b'\t');
        self.0[last] = b'\n';
    }
}

/// Appends `s` escaped for the COPY text format. Multi-byte UTF-8 sequences never contain ASCII
/// bytes, so a byte-wise scan is safe.
fn escape_copy_text(buf: &mut BytesMut, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        buf.extend_from_slice(escaped);
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
}

/// The longest prefix of `s` with at most `max` characters (PostgreSQL counts characters).
fn truncate_chars(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn push_2digits(buf: &mut BytesMut, v: u32) {
    buf.put_u8(b'0' + (v / 10 % 10) as u8);
    buf.put_u8(b'0' + (v % 10) as u8);
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Writes `YYYY-MM-DD HH:MM:SS[.ffffff]` (fraction without trailing zeros, omitted when zero).
fn write_timestamp(buf: &mut BytesMut, us: i64) {
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000) as u32;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400) as u32;
    let mut b = itoa::Buffer::new();
    let year = b.format(y);
    for _ in year.len()..4 {
        buf.put_u8(b'0');
    }
    buf.extend_from_slice(year.as_bytes());
    buf.put_u8(b'-');
    push_2digits(buf, mo);
    buf.put_u8(b'-');
    push_2digits(buf, d);
    buf.put_u8(b' ');
    push_2digits(buf, sod / 3600);
    buf.put_u8(b':');
    push_2digits(buf, sod / 60 % 60);
    buf.put_u8(b':');
    push_2digits(buf, sod % 60);
    if frac != 0 {
        buf.put_u8(b'.');
        let mut digits = [0u8; 6];
        let mut f = frac;
        for slot in digits.iter_mut().rev() {
            *slot = b'0' + (f % 10) as u8;
            f /= 10;
        }
        let len = 6 - digits.iter().rev().take_while(|&&c| c == b'0').count();
        buf.extend_from_slice(&digits[..len]);
    }
}

// ---------------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------------

/// Everything nasty at once; the main text column of row 2 of every table carries it, so even the
/// smallest sample exercises each escaping rule.
const KITCHEN_SINK: &str =
    "Kitchen sink: é ü ß ñ Ω 日本語 🍰 👩\u{200d}👩\u{200d}👧 | \"double\" 'single' | \
back\\slash \\N \\. C:\\path\\ | tab\there | nl\nhere | crlf\r\nhere | cr\rhere | \
bell\u{7} esc\u{1b} del\u{7f} | ls\u{2028}ps\u{2029} | zw\u{200b}sp rtl\u{202e}x | end\\";

/// Awkward fragments sprinkled into random text.
const SPICES: &[&str] = &[
    "Café crème brûlée à la carte",
    "Grüße aus München, schön!",
    "日本語のテキストです",
    "🍰 cake & ☕ coffee 🎉",
    "they said \"best in town\"",
    "C:\\Users\\cityforge\\notes.txt",
    "col1\tcol2\tcol3",
    "line one\nline two",
    "windows line\r\nending",
    "bell\u{7} esc\u{1b} del\u{7f}",
    "line\u{2028}separator, paragraph\u{2029}separator",
    "\\N is not NULL",
    "\\.",
    "trailing backslash \\",
    "it's O'Brien's",
    "{\"json\": [1, \"two\", null]}",
    "Ωmega ñandú Łódź Ærøskøbing",
    "👩\u{200d}👩\u{200d}👧 family day",
    "<b>bold</b> &amp; <i>html</i>",
    "50% off — today only…",
];

#[rustfmt::skip]
const STARTERS: &[&str] = &[
    "We", "Our team", "The owner", "Everyone", "Locals", "This place", "Friendly staff", "Please",
    "Thanks to", "Neighbors", "Come", "Honestly", "Last week", "Every Sunday", "The city",
    "Volunteers", "My family", "Parents", "Kids", "Visitors", "Staff", "The menu", "Prices",
    "Parking",
];

#[rustfmt::skip]
const WORDS: &[&str] = &[
    "the", "a", "and", "of", "to", "in", "for", "with", "our", "your", "local", "community",
    "neighborhood", "family", "owned", "friendly", "fresh", "daily", "weekly", "open", "late",
    "early", "morning", "evening", "weekend", "service", "repair", "bakery", "coffee", "garden",
    "park", "library", "market", "music", "school", "classes", "volunteer", "help", "support",
    "free", "parking", "available", "near", "downtown", "street", "corner", "main", "river",
    "bridge", "station", "bus", "bike", "trail", "event", "meeting", "council", "city", "hall",
    "clinic", "health", "food", "bank", "pantry", "shelter", "donations", "books", "kids",
    "seniors", "pets", "vet", "hardware", "tools", "paint", "plumbing", "heating", "snow",
    "removal", "lawn", "care", "cleaning", "moving", "delivery", "pickup", "order", "online",
    "call", "ahead", "appointment", "walk-ins", "welcome", "since", "years", "best", "great",
    "excellent", "quick", "reliable", "prices", "menu", "pie", "soup", "bread", "pastries", "is",
    "are", "was", "really", "very", "always", "never", "sometimes", "café", "naïve", "façade",
    "Straße", "jalapeño", "über", "crème", "piñata", "Zürich", "résumé", "coöperative",
    "smörgåsbord",
];

#[rustfmt::skip]
const FIRST_NAMES: &[&str] = &[
    "Ada", "Zoë", "José", "Søren", "Björn", "Łukasz", "Amélie", "Chloé", "Noah", "Liam", "Emma",
    "Olivia", "Mia", "Lucas", "Hiro", "Yuki", "太郎", "花子", "Mohammed", "Fatima", "Aisha", "Ivan",
    "Olga", "Siobhán", "Seán", "Renée", "François", "Zeynep", "Ayşe", "Priya", "Arjun", "Kwame",
    "Amara", "Mateo", "Sofía", "Jürgen", "Åsa", "Ólafur", "Grace", "Henry", "Jack", "Lily", "Ella",
    "Leo", "Max", "Sam", "Alex", "Kim", "Mary-Jane", "Jean-Luc",
];

#[rustfmt::skip]
const LAST_NAMES: &[&str] = &[
    "Müller", "García", "O'Brien", "Nguyen", "山田", "Smith", "Johnson", "Brown", "Dubois", "Rossi",
    "Kowalski", "Novák", "Öztürk", "Jensen", "Andersson", "Fernández", "López", "Schmidt",
    "Schröder", "Kim", "Park", "Chen", "Wang", "Singh", "Patel", "Okafor", "Mensah", "Ivanova",
    "Petrov", "D'Angelo", "van der Berg", "MacDonald", "Smith-Jones", "Ó Súilleabháin", "Håkansson",
    "Lefèvre", "Brontë", "Taylor", "Wilson", "Nakamura",
];

#[rustfmt::skip]
const EMAIL_DOMAINS: &[&str] = &[
    "example.com", "example.org", "example.net", "mail.example", "example.de", "bücher.example",
];

#[rustfmt::skip]
const BUSINESS_KINDS: &[&str] = &[
    "Diner", "Bakery", "Café", "Hardware", "Books", "Garden Center", "Auto Repair", "Dental Clinic",
    "Yoga Studio", "Bike Shop", "Pizzeria", "Sushi Bar", "Food Pantry", "Community Center",
    "Plumbing", "Electric", "Pet Grooming", "Barbershop", "Florist", "Brewery", "日本料理", "Bäckerei",
    "Crêperie", "Taquería", "Laundromat", "Thrift Store", "Music School", "Law Office",
];

#[rustfmt::skip]
const ADJECTIVES: &[&str] = &[
    "Golden", "Blue", "Green", "Sunny", "Old Town", "Riverside", "Main Street", "Corner", "Happy",
    "Lucky", "Northside", "Maple", "Cedar", "Eastside", "Little", "Big", "Royal", "Über", "Café",
];

#[rustfmt::skip]
const STREETS: &[&str] = &[
    "Main", "Oak", "Maple", "Cedar", "Elm", "Pine", "Washington", "Lake", "Hill", "Park", "River",
    "Church", "Market", "Bahnhof", "Königs", "Élysée",
];

const STREET_SUFFIXES: &[&str] = &["St", "Ave", "Rd", "Blvd", "Ln", "Way", "Dr", "Straße"];

#[rustfmt::skip]
const CITIES: &[&str] = &[
    "Springfield", "Riverside", "Fairview", "Mülheim", "Saint-Étienne", "Québec", "São Paulo", "東京",
    "Oakland", "Portland", "Madison", "Georgetown",
];

const SPECIAL_TAGS: &[&str] = &[
    "café",
    "日本語タグ",
    "",
    "🍰 desserts",
    "\"quoted\" tag",
    "back\\slash",
    "tab\ttag",
    "multi\nline",
];

#[rustfmt::skip]
const TAG_WORDS: &[&str] = &[
    "bakery", "coffee", "restaurant", "parks", "library", "health", "dentist", "pharmacy",
    "hardware", "books", "music", "art", "kids", "seniors", "pets", "veterinary", "auto-repair",
    "plumbing", "electrician", "groceries", "farmers-market", "volunteering", "sports", "fitness",
    "yoga", "bikes", "transit", "housing", "legal-aid", "food-bank", "thrift", "florist", "brewery",
    "pizza", "sushi", "vegan", "gluten-free", "late-night", "wifi", "wheelchair-accessible",
    "family-owned", "women-owned", "lgbtq-friendly", "outdoor-seating", "delivery", "takeout",
    "free-parking", "open-sunday", "crème-brûlée", "größe",
];

#[rustfmt::skip]
const RESOURCE_CATEGORIES: &[&str] = &[
    "Emergency", "Health", "Housing", "Food", "Transportation", "Education", "Legal Aid",
    "Utilities", "Seniors", "Youth", "Parks & Recreation", "Municipal Services", "Santé & Soins",
    "日本語サポート", "Employment", "Mental Health", "Animal Services", "Libraries", "Waste & Recycling",
    "Public Safety",
];

/// `(identifier, title, subtitle, phone, color, icon)`.
#[rustfmt::skip]
const QUICK_ACCESS: &[(&str, &str, &str, &str, &str, &str)] = &[
    ("police", "Police", "Non-emergency line", "555-0199", "blue", "shield"),
    ("fire", "Fire Department", "Non-emergency", "555-0142", "red", "flame"),
    ("hospital", "General Hospital", "24/7 emergency room", "555-0100", "green", "hospital"),
    ("poison-control", "Poison Control", "Free & confidential", "1-800-222-1222", "purple", "alert-triangle"),
    ("city-hall", "City Hall", "Mon–Fri 8–5", "555-0111", "blue", "building"),
    ("animal-control", "Animal Control", "Lost pets & wildlife 🐾", "555-0177", "orange", "paw-print"),
    ("utilities", "Water & Power", "Report an outage", "555-0123", "teal", "zap"),
    ("transit", "Transit Info", "Bus & rail schedules", "555-0188", "indigo", "bus"),
    ("crisis-line", "Crisis Line", "Talk to someone — 24/7", "988", "red", "heart"),
    ("library", "Public Library", "Bücher, DVDs & more", "555-0155", "green", "book"),
    ("parks", "Parks & Rec", "Reservations", "555-0166", "green", "trees"),
    ("city-services", "City Services", "Potholes, graffiti, \"other\"", "311", "gray", "phone"),
];

#[rustfmt::skip]
const CONFIG_KEYS: &[&str] = &[
    "site_title", "site_description", "footer_json", "contact_email", "primary_color", "logo_url",
    "enable_forum", "enable_help_wanted", "max_upload_mb", "welcome_message", "maintenance_mode",
    "analytics_id", "timezone", "default_locale", "support_phone", "social_links", "terms_url",
    "privacy_url", "about_html", "banner_text",
];

const CONFIG_VALUES: &[&str] = &[
    "CityForge",
    "{\"links\": [\"a\", \"b\"], \"nested\": {\"x\": null}}",
    "",
    "true",
    "false",
    "42",
    "<p>Welcome to <b>CityForge</b> — “smart quotes”</p>",
    "Line 1\nLine 2\r\nLine 3",
    "C:\\config\\cityforge.ini",
    "#1e40af",
    "America/New_York",
    "日本語の設定値",
    "🍰",
];

/// `(name, slug)`.
const FORUM_CATEGORIES: &[(&str, &str)] = &[
    ("General", "general"),
    ("Announcements", "announcements"),
    ("Events", "events"),
    ("Buy & Sell", "buy-sell"),
    ("Lost & Found", "lost-found"),
    ("Neighborhood Watch", "neighborhood-watch"),
    ("Recommendations", "recommendations"),
    ("Off-Topic", "off-topic"),
    ("Café Talk", "cafe-talk"),
    ("日本語フォーラム", "japanese"),
    ("Pets 🐶", "pets"),
    ("Gardening", "gardening"),
    ("Parents", "parents"),
    ("Sports", "sports"),
    ("Jobs", "jobs"),
    ("Housing", "housing"),
    ("Transit", "transit"),
    ("City \"Council\"", "city-council"),
    ("Volunteering", "volunteering"),
    ("Help & Feedback", "help-feedback"),
];

#[rustfmt::skip]
const REPORT_REASONS: &[&str] = &[
    "spam", "spam", "harassment", "off-topic", "misinformation", "inappropriate", "duplicate",
    "scam", "other", "¡spam! 🚫", "contenu inapproprié",
];

#[rustfmt::skip]
const HELP_CATEGORIES: &[&str] = &[
    "hiring", "volunteer", "moving", "tutoring", "pet-sitting", "repairs", "childcare", "gardening",
    "tech-help", "cleaning", "other",
];

#[rustfmt::skip]
const BUDGETS: &[&str] = &[
    "$50", "$20/hour", "€30 per hour", "negotiable", "¥5000", "free 🍰", "", "$1,000–$1,500",
    "Will pay in pie 🥧", "\"fair\" price",
];

const IMAGE_EXTS: &[&str] = &["jpg", "png", "webp", "jpeg"];

#[rustfmt::skip]
const ICONS: &[&str] = &[
    "building", "hospital", "home", "utensils", "bus", "book", "scale", "zap", "users", "heart",
    "tree", "phone",
];

const ERRORS: &[&str] = &[
    "Timeout after 30s",
    "HTTP 404: Not Found",
    "Traceback (most recent call last):\n  File \"indexer.py\", line 42, in crawl\nConnectionError: [Errno 111] Connection refused",
    "SSL: CERTIFICATE_VERIFY_FAILED\r\n",
    "robots.txt disallows /",
    "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff",
    "",
];

/// UTC offsets (minutes) for `timestamptz` values; PostgreSQL stores the instant either way.
const TZ_OFFSETS: &[i32] = &[0, 0, 0, 0, 60, 120, -300, -420, 330, 540, -210, 345];

/// Unique tag name for tag id `i` (1-based).
fn tag_name(i: u64) -> Cow<'static, str> {
    let idx = (i - 1) as usize;
    if let Some(s) = SPECIAL_TAGS.get(idx) {
        return Cow::Borrowed(s);
    }
    numbered(TAG_WORDS, idx - SPECIAL_TAGS.len(), " ")
}

/// Unique resource category name for category id `i` (1-based).
fn resource_category_name(i: u64) -> Cow<'static, str> {
    numbered(RESOURCE_CATEGORIES, (i - 1) as usize, " ")
}

/// `base[j]` for the first round, then `"{base} {round}"`: unique for every `j` as long as no base
/// entry itself ends in `sep` + digits.
fn numbered(base: &[&'static str], j: usize, sep: &str) -> Cow<'static, str> {
    let word = base[j % base.len()];
    match j / base.len() {
        0 => Cow::Borrowed(word),
        round => Cow::Owned(format!("{word}{sep}{}", round + 1)),
    }
}

/// Lower-case ASCII slug: runs of anything but `[a-z0-9]` become one `-`.
fn slugify(out: &mut String, s: &str) {
    let mut dash = true;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
            dash = false;
        } else if !dash {
            out.push('-');
            dash = true;
        }
    }
    if out.ends_with('-') {
        out.pop();
    }
}

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

/// 2022-01-01 00:00:00 UTC.
const EPOCH_START_S: i64 = 1_640_995_200;
/// About 3.7 years of history.
const HISTORY_S: i64 = 118_000_000;
const DAY_S: u64 = 86_400;

impl Rng {
    /// Sub-second part, biased towards the interesting cases (none, `.5`, `.123456`, `.999999`).
    fn micros(&mut self) -> i64 {
        match self.below(100) {
            0..=44 => 0,
            45..=54 => 500_000,
            55..=59 => 123_456,
            60..=62 => 999_999,
            63..=64 => 1,
            65..=67 => 250_000,
            _ => self.below(1_000_000) as i64,
        }
    }

    /// Creation time of row `id` of `n`: ids grow with time, as in a real application.
    fn created(&mut self, id: u64, n: u64) -> i64 {
        let slot = HISTORY_S as u64 / n.max(1);
        let s = EPOCH_START_S
            + (u128::from(HISTORY_S as u64) * u128::from(id - 1) / u128::from(n.max(1))) as i64
            + self.below(slot.clamp(1, 3 * DAY_S)) as i64;
        s * 1_000_000 + self.micros()
    }

    /// A time 1 second to `max_s` seconds after `t`.
    fn after(&mut self, t: i64, max_s: u64) -> i64 {
        (t.div_euclid(1_000_000) + 1 + self.below(max_s) as i64) * 1_000_000 + self.micros()
    }

    fn tz(&mut self) -> i32 {
        self.pick(TZ_OFFSETS)
    }
}

// ---------------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------------

impl Rng {
    /// Prose of roughly `min..=max` bytes; with `spice_pct` % chance it carries one awkward
    /// fragment from [`SPICES`].
    fn paragraph(&mut self, s: &mut String, min: usize, max: usize, spice_pct: u64) {
        s.clear();
        let target = self.between(min as u64, max as u64) as usize;
        let mut spice = self.chance(spice_pct);
        while s.len() < target {
            if !s.is_empty() {
                s.push_str(match self.below(100) {
                    0..=79 => " ",
                    80..=89 => "\n",
                    90..=96 => "\n\n",
                    _ => "\r\n",
                });
            }
            self.push_sentence(s, 3, 12);
            if spice && self.chance(40) {
                s.push(' ');
                s.push_str(self.pick(SPICES));
                spice = false;
            }
        }
    }

    /// One sentence of `min_words..=max_words` words after a capitalised starter.
    fn push_sentence(&mut self, s: &mut String, min_words: u64, max_words: u64) {
        s.push_str(self.pick(STARTERS));
        for _ in 0..self.between(min_words, max_words) {
            s.push(' ');
            s.push_str(self.pick(WORDS));
        }
        s.push(self.pick(&['.', '.', '.', '!', '?']));
    }

    fn sentence(&mut self, s: &mut String, min_words: u64, max_words: u64) {
        s.clear();
        self.push_sentence(s, min_words, max_words);
    }

    fn person(&mut self, s: &mut String) {
        s.clear();
        s.push_str(self.pick(FIRST_NAMES));
        s.push(' ');
        s.push_str(self.pick(LAST_NAMES));
    }

    fn business_name(&mut self, s: &mut String) {
        s.clear();
        match self.below(6) {
            0 => {
                s.push_str(self.pick(FIRST_NAMES));
                s.push_str("'s ");
                s.push_str(self.pick(BUSINESS_KINDS));
            }
            1 | 2 => {
                s.push_str(self.pick(ADJECTIVES));
                s.push(' ');
                s.push_str(self.pick(BUSINESS_KINDS));
            }
            3 => {
                s.push_str("The ");
                s.push_str(self.pick(ADJECTIVES));
                s.push(' ');
                s.push_str(self.pick(BUSINESS_KINDS));
            }
            4 => {
                s.push_str(self.pick(BUSINESS_KINDS));
                s.push(' ');
                s.push_str(self.pick(LAST_NAMES));
            }
            _ => {
                s.push_str(self.pick(LAST_NAMES));
                s.push_str(" & ");
                s.push_str(self.pick(LAST_NAMES));
                s.push(' ');
                s.push_str(self.pick(BUSINESS_KINDS));
            }
        }
    }

    fn address(&mut self, s: &mut String) {
        s.clear();
        let _ = write!(
            s,
            "{} {} {}",
            self.between(1, 9999),
            self.pick(STREETS),
            self.pick(STREET_SUFFIXES)
        );
        if self.chance(10) {
            let _ = write!(s, ", Apt {}", self.between(1, 40));
        }
        s.push_str(if self.chance(15) { "\n" } else { ", " });
        s.push_str(self.pick(CITIES));
    }

    fn phone(&mut self, s: &mut String) {
        s.clear();
        let _ = match self.below(5) {
            0 => write!(
                s,
                "(555) 01{:02}-{:04}",
                self.below(100),
                self.below(10_000)
            ),
            1 => write!(s, "+1 555 01{:02} {:02}", self.below(100), self.below(100)),
            2 => write!(s, "+49 30 {:08}", self.below(100_000_000)),
            3 => write!(s, "555.{:03}.{:04}", self.below(1000), self.below(10_000)),
            _ => write!(s, "555-{:04}", self.below(10_000)),
        };
    }

    fn url(&mut self, s: &mut String, id: u64) {
        s.clear();
        let _ = match self.below(4) {
            0 => write!(s, "https://www.{}-{}.example/", self.pick(TAG_WORDS), id),
            1 => write!(
                s,
                "https://{}.example.com/about?id={}&ref=cityforge",
                self.pick(TAG_WORDS),
                id
            ),
            2 => write!(s, "http://example.org/{}/{}", self.pick(TAG_WORDS), id),
            _ => write!(s, "https://café-{id}.example/menü"),
        };
    }

    fn contact_email(&mut self, s: &mut String, id: u64) {
        s.clear();
        let _ = write!(
            s,
            "{}{}@{}",
            self.pick(&["info", "hello", "contact", "owner", "büro", "o'brien"]),
            id,
            self.pick(EMAIL_DOMAINS)
        );
    }

    /// Comma-separated tag names, as typed into the submission form.
    fn tags_text(&mut self, s: &mut String, tags: u64) {
        s.clear();
        for i in 0..self.between(1, 4) {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(&tag_name(self.popular_id(tags) as u64));
        }
    }

    /// A bcrypt-looking hash: `$2b$12$` and 53 characters of `[./A-Za-z0-9]`.
    fn bcrypt(&mut self, s: &mut String) {
        const ALPHABET: &[u8; 64] =
            b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        s.clear();
        s.push_str("$2b$12$");
        let mut bits = 0u64;
        let mut left = 0;
        for _ in 0..53 {
            if left == 0 {
                bits = self.next_u64();
                left = 10;
            }
            s.push(ALPHABET[(bits & 63) as usize] as char);
            bits >>= 6;
            left -= 1;
        }
    }

    fn opt_bool(&mut self, null_pct: u64, true_pct: u64) -> Option<bool> {
        if self.chance(null_pct) {
            None
        } else {
            Some(self.chance(true_pct))
        }
    }

    /// True with `100 - null_pct` percent probability: "this nullable value is present".
    fn present(&mut self, null_pct: u64) -> bool {
        !self.chance(null_pct)
    }

    fn review_status(&mut self) -> Option<&'static str> {
        match self.below(100) {
            0..=44 => Some("pending"),
            45..=74 => Some("approved"),
            75..=94 => Some("rejected"),
            _ => None,
        }
    }

    fn report_status(&mut self) -> Option<&'static str> {
        match self.below(100) {
            0..=49 => Some("pending"),
            50..=69 => Some("reviewed"),
            70..=84 => Some("resolved"),
            85..=94 => Some("dismissed"),
            _ => None,
        }
    }

    /// Small counters: mostly zero.
    fn report_count(&mut self) -> i64 {
        if self.chance(85) {
            0
        } else {
            self.between(1, 7) as i64
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Row generators
// ---------------------------------------------------------------------------------------------

/// Generates the rows of one table. Each table has its own PRNG stream, so the data of one table
/// does not depend on how the others are generated.
struct Gen<'a> {
    table: Table,
    plan: &'a Plan,
    rng: Rng,
    s: String,
    s2: String,
}

impl<'a> Gen<'a> {
    fn new(table: Table, plan: &'a Plan) -> Gen<'a> {
        Gen {
            table,
            plan,
            rng: Rng::new(SEED ^ mix64(table as u64 + 1)),
            s: String::with_capacity(1024),
            s2: String::with_capacity(256),
        }
    }

    fn n(&self, t: Table) -> u64 {
        self.plan.rows(t)
    }

    /// How many times [`Gen::write`] is called: once per row, except `card_tags` (once per card).
    fn units(&self) -> u64 {
        match self.table {
            Table::CardTags => self.n(Table::Cards),
            t => self.n(t),
        }
    }

    fn user(&mut self) -> i64 {
        let n = self.n(Table::Users);
        self.rng.popular_id(n)
    }

    fn opt_user(&mut self, null_pct: u64) -> Option<i64> {
        if self.rng.chance(null_pct) {
            None
        } else {
            Some(self.user())
        }
    }

    /// A staff member (admins are users 1, 51, 101, ...).
    fn staff(&mut self) -> i64 {
        let admins = (self.n(Table::Users) - 1) / 50 + 1;
        1 + 50 * self.rng.below(admins) as i64
    }

    /// Main text column: the kitchen sink in row 2, prose otherwise.
    fn prose(&mut self, id: u64, min: usize, max: usize) -> &str {
        if id == 2 {
            KITCHEN_SINK
        } else {
            self.rng.paragraph(&mut self.s, min, max, 12);
            &self.s
        }
    }

    fn write(&mut self, unit: u64, out: &mut RowBuf) {
        if self.table == Table::CardTags {
            // One call per card, writing that card's (possibly zero) rows.
            return self.card_tags(unit, out);
        }
        match self.table {
            Table::Users => self.users(unit, out),
            Table::Tags => self.tags(unit, out),
            Table::Cards => self.cards(unit, out),
            Table::CardTags => unreachable!("handled above"),
            Table::CardSubmissions => self.card_submissions(unit, out),
            Table::CardModifications => self.card_modifications(unit, out),
            Table::Reviews => self.reviews(unit, out),
            Table::ResourceCategories => self.resource_categories(unit, out),
            Table::QuickAccessItems => self.quick_access_items(unit, out),
            Table::ResourceItems => self.resource_items(unit, out),
            Table::ResourceConfig => self.resource_config(unit, out),
            Table::ForumCategories => self.forum_categories(unit, out),
            Table::ForumCategoryRequests => self.forum_category_requests(unit, out),
            Table::ForumThreads => self.forum_threads(unit, out),
            Table::ForumPosts => self.forum_posts(unit, out),
            Table::ForumReports => self.forum_reports(unit, out),
            Table::HelpWantedPosts => self.help_wanted_posts(unit, out),
            Table::HelpWantedComments => self.help_wanted_comments(unit, out),
            Table::HelpWantedReports => self.help_wanted_reports(unit, out),
            Table::IndexingJobs => self.indexing_jobs(unit, out),
            Table::TokenBlacklist => self.token_blacklist(unit, out),
        }
        out.end_row();
    }

    fn users(&mut self, id: u64, out: &mut RowBuf) {
        let n = self.n(Table::Users);
        let rng = &mut self.rng;
        out.int(id as i64);
        let (first, last) = match id {
            2 => ("Zoë", "Müller"),
            3 => ("Tab\tName", "Line\nBreak"),
            _ if id % 211 == 17 => ("", rng.pick(LAST_NAMES)),
            _ if id % 97 == 5 => ("Robert'); DROP TABLE users;--", "Tables"),
            _ => (rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES)),
        };
        // email: unique because the id sits right before the '@' and no local part ends in a digit.
        self.s.clear();
        if id == 3 || id % 101 == 7 {
            self.s.push_str("quote\"back\\slash");
        } else if first.is_empty() || first.contains(['\'', ')']) {
            self.s.push_str("user");
        } else {
            self.s.extend(
                first
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .flat_map(char::to_lowercase),
            );
            self.s.push('.');
            self.s.extend(
                last.chars()
                    .filter(|c| !c.is_whitespace())
                    .flat_map(char::to_lowercase),
            );
        }
        let _ = write!(self.s, "{id}@{}", rng.pick(EMAIL_DOMAINS));
        debug_assert!(self.s.chars().count() <= 120);
        out.text(&self.s);
        rng.bcrypt(&mut self.s);
        out.text(&self.s);
        out.varchar(first, 50);
        out.varchar(last, 50);
        out.text(if id % 50 == 1 {
            "admin"
        } else if rng.chance(8) {
            "supporter"
        } else {
            "user"
        });
        out.boolean(rng.opt_bool(10, 15));
        out.boolean(rng.opt_bool(5, 92));
        let created = if id == 2 {
            // 2024-02-29 23:59:59.999999: leap day, last microsecond.
            1_709_251_199_999_999
        } else {
            rng.created(id, n)
        };
        out.ts(rng.present(8).then_some(created));
        out.ts(rng.present(20).then(|| rng.after(created, 400 * DAY_S)));
    }

    fn tags(&mut self, id: u64, out: &mut RowBuf) {
        let n = self.n(Table::Tags);
        out.int(id as i64);
        out.varchar(&tag_name(id), 500);
        let t = self.rng.created(id, n);
        out.ts(self.rng.present(10).then_some(t));
    }

    /// `name .. contact_name`, shared by cards, card submissions and card modifications.
    fn card_fields(&mut self, id: u64, null_pct: u64, out: &mut RowBuf) {
        if id == 2 {
            out.varchar("Ctrl\u{7} \"Co\" \\ tab\tnl\ncrlf\r\n日本🍰\u{2028}", 255);
        } else {
            self.rng.business_name(&mut self.s2);
            out.varchar(&self.s2, 255);
        }
        let desc_present = self.rng.present(null_pct);
        if !desc_present {
            out.null();
        } else if self.rng.chance(2) {
            out.text("");
        } else {
            let text = self.prose(id, 50, 400);
            out.text(text);
        }
        let rng = &mut self.rng;
        let s = &mut self.s2;
        if rng.present(null_pct + 5) {
            rng.url(s, id);
            out.varchar(s, 255);
        } else {
            out.null();
        }
        if rng.present(null_pct) {
            rng.phone(s);
            out.varchar(s, 20);
        } else {
            out.null();
        }
        if rng.present(null_pct + 10) {
            rng.contact_email(s, id);
            out.varchar(s, 100);
        } else {
            out.null();
        }
        if rng.present(null_pct.saturating_sub(5)) {
            rng.address(s);
            out.varchar(s, 255);
        } else {
            out.null();
        }
        if rng.chance(15) {
            s.clear();
            let _ = write!(
                s,
                "https://maps.example.com/?q={}+{}+St&z={}",
                rng.between(1, 9999),
                rng.pick(STREETS),
                rng.between(10, 18)
            );
            out.varchar(s, 500);
        } else {
            out.null();
        }
        match rng.below(100) {
            0..=24 => out.null(),
            25..=27 => out.text(""),
            _ => {
                rng.person(s);
                out.varchar(s, 100);
            }
        }
    }

    fn image_url(&mut self, id: u64, out: &mut RowBuf) {
        if self.rng.chance(40) {
            out.null();
        } else {
            self.s2.clear();
            let ext = self.rng.pick(IMAGE_EXTS);
            let _ = write!(self.s2, "https://cdn.cityforge.example/img/{id:06}.{ext}");
            out.varchar(&self.s2, 255);
        }
    }

    fn cards(&mut self, id: u64, out: &mut RowBuf) {
        let n = self.n(Table::Cards);
        out.int(id as i64);
        self.card_fields(id, 15, out);
        out.boolean(self.rng.opt_bool(5, 10));
        self.image_url(id, out);
        let created_by = self.opt_user(10);
        out.opt_int(created_by);
        let approved = self.rng.opt_bool(5, 90);
        out.boolean(approved);
        let created = self.rng.created(id, n);
        if approved == Some(true) && self.rng.present(10) {
            let by = self.staff();
            out.int(by);
            let t = self.rng.after(created, 10 * DAY_S);
            out.ts(Some(t));
        } else {
            out.null();
            out.null();
        }
        out.ts(self.rng.present(5).then_some(created));
        let updated = self
            .rng
            .chance(60)
            .then(|| self.rng.after(created, 300 * DAY_S));
        out.ts(updated);
    }

    /// All tags of card `card`: consecutive tag ids from a popularity-skewed start, so the
    /// `(card_id, tag_id)` pairs are distinct.
    fn card_tags(&mut self, card: u64, out: &mut RowBuf) {
        let (cards, tags, links) = (
            self.n(Table::Cards),
            self.n(Table::Tags),
            self.n(Table::CardTags),
        );
        let upto = |c: u64| (u128::from(c) * u128::from(links) / u128::from(cards)) as u64;
        let k = upto(card) - upto(card - 1);
        debug_assert!(k <= tags);
        let start = self.rng.popular_id(tags) as u64 - 1;
        for j in 0..k {
            out.int(card as i64);
            out.int(((start + j) % tags + 1) as i64);
            out.end_row();
        }
    }

    /// `tags_text, status, submitted_by, reviewed_by, review_notes` (+ the card for submissions).
    fn submission_tail(&mut self, out: &mut RowBuf) -> Option<&'static str> {
        if self.rng.chance(30) {
            out.null();
        } else {
            let tags = self.n(Table::Tags);
            self.rng.tags_text(&mut self.s2, tags);
            out.text(&self.s2);
        }
        let status = self.rng.review_status();
        out.opt_text(status);
        let by = self.user();
        out.int(by);
        let reviewed = !matches!(status, Some("pending"));
        if reviewed && self.rng.present(10) {
            let staff = self.staff();
            out.int(staff);
        } else {
            out.null();
        }
        if reviewed && self.rng.chance(50) {
            self.rng.sentence(&mut self.s2, 2, 14);
            out.text(&self.s2);
        } else {
            out.null();
        }
        status
    }

    fn card_submissions(&mut self, id: u64, out: &mut RowBuf) {
        let n = self.n(Table::CardSubmissions);
        out.int(id as i64);
        self.card_fields(id, 20, out);
        self.image_url(id, out);
        let status = self.submission_tail(out);
        if status == Some("approved") && self.rng.present(5) {
            let card = self.rng.id(self.n(Table::Cards));
            out.int(card);
        } else {
            out.null();
        }
        let created = self.rng.created(id, n);
        out.ts(self.rng.present(3).then_some(created));
        let reviewed = status != Some("pending") && self.rng.present(10);
        out.ts(reviewed.then(|| self.rng.after(created, 20 * DAY_S)));
    }

    fn card_modifications(&mut self, id: u64, out: &mut RowBuf) {
        let n = self.n(Table::CardModifications);
        out.int(id as i64);
        let card = self.rng.popular_id(self.n(Table::Cards));
        out.int(card);
        self.card_fields(id, 20, out);
        self.image_url(id, out);
        let status = self.submission_tail(out);
        let created = self.rng.created(id, n);
        out.ts(self.rng.present(3).then_some(created));
        let reviewed = status != Some("pending") && self.rng.present(10);
        out.ts(reviewed.then(|| self.rng.after(created, 20 * DAY_S)));
    }

    fn reviews(&mut self, id: u64, out: &mut RowBuf) {
        let n = self.n(Table::Reviews);
        out.int(id as i64);
        let card = self.rng.popular_id(self.n(Table::Cards));
        out.int(card);
        let user = self.user();
        out.int(user);
        let rating = self.rng.pick(&[1, 2, 3, 3, 4, 4, 4, 5, 5, 5, 5, 5]);
        out.int(rating);
        match self.rng.below(100) {
            0..=14 => out.null(),
            15..=17 => out.text(""),
            _ => {
                self.rng.sentence(&mut self.s2, 1, 6);
                out.varchar(&self.s2, 200);
            }
        }
        if self.rng.chance(12) {
            out.null();
        } else {
            let text = self.prose(id, 30, 400);
            out.text(text);
        }
        let reported = self.rng.opt_bool(3, 5);
        out.boolean(reported);
        let created = self.rng.created(id, n);
        if reported == Some(true) {
            let by = self.user();
            out.int(by);
            let t = self.rng.after(created, 60 * DAY_S);
            out.ts(Some(t));
            self.rng.sentence(&mut self.s2, 2, 10);
            out.text(&self.s2);
        } else {
            out.null();
            out.null();
            out.null();
        }
        out.boolean(self.rng.opt_bool(3, 4));
        out.ts(self.rng.present(5).then_some(created));
        let updated = self
            .rng
            .chance(25)
            .then(|| self.rng.after(created, 90 * DAY_S));
        out.ts(updated);
    }

    fn resource_categories(&mut self, id: u64, out: &mut RowBuf) {
        out.int(id as i64);
        out.text(&resource_category_name(id));
        out.opt_int(self.rng.present(10).then_some(id as i64 * 10));
        let t = self.rng.created(id, 1_000_000);
        out.ts(self.rng.present(10).then_some(t));
    }

    fn quick_access_items(&mut self, id: u64, out: &mut RowBuf) {
        let j = (id - 1) as usize;
        let (ident, title, subtitle, phone, color, icon) = QUICK_ACCESS[j % QUICK_ACCESS.len()];
        let round = j / QUICK_ACCESS.len();
        out.int(id as i64);
        if round == 0 {
            out.text(ident);
            out.varchar(title, 100);
        } else {
            self.s2.clear();
            let _ = write!(self.s2, "{ident}-{}", round + 1);
            debug_assert!(self.s2.len() <= 50);
            out.text(&self.s2);
            self.s2.clear();
            let _ = write!(self.s2, "{title} {}", round + 1);
            out.varchar(&self.s2, 100);
        }
        out.varchar(subtitle, 100);
        out.varchar(phone, 20);
        out.varchar(color, 20);
        out.varchar(icon, 50);
        out.opt_int(self.rng.present(10).then_some(id as i64));
        out.boolean(self.rng.opt_bool(5, 90));
        let t = self.rng.created(id, 1_000_000);
        out.ts(self.rng.present(15).then_some(t));
    }

    fn resource_items(&mut self, id: u64, out: &mut RowBuf) {
        let n = self.n(Table::ResourceItems);
        out.int(id as i64);
        self.rng.business_name(&mut self.s2);
        out.varchar(&self.s2, 200);
        self.rng.url(&mut self.s2, id);
        out.varchar(&self.s2, 500);
        if self.rng.chance(2) {
            out.text("");
        } else {
            let text = self.prose(id, 50, 400);
            out.text(text);
        }
        let category = self.rng.popular_id(self.n(Table::ResourceCategories)) as u64;
        out.varchar(&resource_category_name(category), 100);
        out.opt_int(self.rng.present(10).then_some(category as i64));
        if self.rng.present(30) {
            self.rng.phone(&mut self.s2);
            out.varchar(&self.s2, 20);
        } else {
            out.null();
        }
        if self.rng.present(30) {
            self.rng.address(&mut self.s2);
            out.varchar(&self.s2, 500);
        } else {
            out.null();
        }
        out.varchar(self.rng.pick(ICONS), 50);
        out.opt_int(self.rng.present(10).then(|| self.rng.below(100) as i64));
        out.boolean(self.rng.opt_bool(5, 90));
        let created = self.rng.created(id, n);
        out.ts(self.rng.present(10).then_some(created));
        let updated = self
            .rng
            .chance(40)
            .then(|| self.rng.after(created, 200 * DAY_S));
        out.ts(updated);
    }

    fn resource_config(&mut self, id: u64, out: &mut RowBuf) {
        out.int(id as i64);
        out.text(&numbered(CONFIG_KEYS, (id - 1) as usize, "_"));
        if id == 2 {
            out.text(KITCHEN_SINK);
        } else if self.rng.chance(70) {
            out.text(self.rng.pick(CONFIG_VALUES));
        } else {
            self.rng.paragraph(&mut self.s, 10, 200, 20);
            out.text(&self.s);
        }
        if self.rng.chance(30) {
            out.null();
        } else {
            self.rng.sentence(&mut self.s2, 2, 12);
            out.varchar(&self.s2, 500);
        }
        let created = self.rng.created(id, 1_000_000);
        out.ts(self.rng.present(15).then_some(created));
        let updated = self
            .rng
            .chance(50)
            .then(|| self.rng.after(created, 500 * DAY_S));
        out.ts(updated);
    }

    fn forum_categories(&mut self, id: u64, out: &mut RowBuf) {
        let j = (id - 1) as usize;
        let (name, slug) = FORUM_CATEGORIES[j % FORUM_CATEGORIES.len()];
        let round = j / FORUM_CATEGORIES.len();
        out.int(id as i64);
        if round == 0 {
            out.text(name);
        } else {
            self.s2.clear();
            let _ = write!(self.s2, "{name} {}", round + 1);
            out.text(&self.s2);
        }
        if self.rng.chance(15) {
            out.null();
        } else {
            let text = self.prose(id, 20, 200);
            out.text(text);
        }
        if round == 0 {
            out.text(slug);
        } else {
            self.s2.clear();
            let _ = write!(self.s2, "{slug}-{}", round + 1);
            out.text(&self.s2);
        }
        out.opt_int(self.rng.present(10).then_some(id as i64));
        out.boolean(self.rng.opt_bool(5, 90));
        let by = self.staff();
        out.int(by);
        let created = self.rng.created(id, 1_000_000);
        out.ts(self.rng.present(10).then_some(created));
        let updated = self
            .rng
            .chance(30)
            .then(|| self.rng.after(created, 300 * DAY_S));
        out.ts(updated);
    }

    fn forum_category_requests(&mut self, id: u64, out: &mut RowBuf) {
        let n = self.n(Table::ForumCategoryRequests);
        out.int(id as i64);
        let (name, _) = self.rng.pick(FORUM_CATEGORIES);
        self.s2.clear();
        let _ = write!(self.s2, "{name} & {}", self.rng.pick(TAG_WORDS));
        out.varchar(&self.s2, 100);
        if self.rng.chance(20) {
            out.null();
        } else {
            let text = self.prose(id, 30, 300);
            out.text(text);
        }
        if self.rng.chance(20) {
            out.null();
        } else {
            self.rng.paragraph(&mut self.s, 20, 200, 10);
            out.text(&self.s);
        }
        let status = self.rng.review_status();
        out.opt_text(status);
        let by = self.user();
        out.int(by);
        let reviewed = status != Some("pending") && self.rng.present(10);
        if reviewed {
            let staff = self.staff();
            out.int(staff);
        } else {
            out.null();
        }
        let created = self.rng.created(id, n);
        out.ts(self.rng.present(5).then_some(created));
        out.ts(reviewed.then(|| self.rng.after(created, 30 * DAY_S)));
        if reviewed && self.rng.chance(50) {
            self.rng.sentence(&mut self.s2, 2, 10);
            out.text(&self.s2);
        } else {
            out.null();
        }
        if status == Some("approved") && self.rng.present(10) {
            let category = self.rng.id(self.n(Table::ForumCategories));
            out.int(category);
        } else {
            out.null();
        }
    }

    /// Thread of forum post `post`: posts come in contiguous blocks per thread.
    fn thread_of_post(&self, post: u64) -> u64 {
        let (threads, posts) = (self.n(Table::ForumThreads), self.n(Table::ForumPosts));
        (u128::from(post - 1) * u128::from(threads) / u128::from(posts)) as u64 + 1
    }

    fn forum_threads(&mut self, id: u64, out: &mut RowBuf) {
        let n = self.n(Table::ForumThreads);
        out.int(id as i64);
        let category = self.rng.popular_id(self.n(Table::ForumCategories));
        out.int(category);
        if id == 2 {
            self.s2.clear();
            self.s2.push_str(
                "Kitchen sink: \"quotes\" \\ tab\t nl\n crlf\r\n bell\u{7} 日本語 🍰 \u{2029}",
            );
        } else {
            self.rng.sentence(&mut self.s2, 2, 12);
        }
        let title = truncate_chars(&self.s2, 255);
        out.text(title);
        self.s.clear();
        slugify(&mut self.s, title);
        self.s.truncate(200);
        let _ = write!(self.s, "-{id}");
        out.text(&self.s);
        out.boolean(self.rng.opt_bool(5, 3));
        out.boolean(self.rng.opt_bool(5, 4));
        out.int(self.rng.report_count());
        let by = self.user();
        out.int(by);
        let created = self.rng.created(id, n);
        out.ts(self.rng.present(3).then_some(created));
        let updated = self
            .rng
            .chance(50)
            .then(|| self.rng.after(created, 30 * DAY_S));
        out.ts(updated);
    }

    fn forum_posts(&mut self, id: u64, out: &mut RowBuf) {
        let n = self.n(Table::ForumPosts);
        out.int(id as i64);
        let thread = self.thread_of_post(id);
        out.int(thread as i64);
        if self.rng.chance(1) {
            out.text("");
        } else {
            let text = self.prose(id, 50, 400);
            out.text(text);
        }
        let first = id == 1 || self.thread_of_post(id - 1) != thread;
        out.boolean(if first {
            Some(true)
        } else if self.rng.chance(2) {
            None
        } else {
            Some(false)
        });
        out.int(self.rng.report_count());
        let by = self.user();
        out.int(by);
        let created = self.rng.created(id, n);
        out.ts(self.rng.present(3).then_some(created));
        let updated = self
            .rng
            .chance(20)
            .then(|| self.rng.after(created, 10 * DAY_S));
        out.ts(updated);
        if self.rng.chance(10) {
            let editor = if self.rng.chance(70) {
                by
            } else {
                self.staff()
            };
            out.int(editor);
            let t = self.rng.after(created, 10 * DAY_S);
            out.ts(Some(t));
        } else {
            out.null();
            out.null();
        }
    }

    /// `reason, details, status, reported_by, reviewed_by, created_date, reviewed_date,
    /// resolution_notes`: shared by forum and help-wanted reports.
    fn report_tail(&mut self, id: u64, n: u64, out: &mut RowBuf) {
        out.varchar(self.rng.pick(REPORT_REASONS), 50);
        if self.rng.chance(30) {
            out.null();
        } else {
            let text = self.prose(id, 20, 300);
            out.text(text);
        }
        let status = self.rng.report_status();
        out.opt_text(status);
        let by = self.user();
        out.int(by);
        let reviewed = !matches!(status, Some("pending")) && self.rng.present(10);
        if reviewed {
            let staff = self.staff();
            out.int(staff);
        } else {
            out.null();
        }
        let created = self.rng.created(id, n);
        out.ts(self.rng.present(3).then_some(created));
        out.ts(reviewed.then(|| self.rng.after(created, 7 * DAY_S)));
        if reviewed && self.rng.chance(60) {
            self.rng.sentence(&mut self.s2, 2, 12);
            out.text(&self.s2);
        } else {
            out.null();
        }
    }

    fn forum_reports(&mut self, id: u64, out: &mut RowBuf) {
        let n = self.n(Table::ForumReports);
        out.int(id as i64);
        let posts = self.n(Table::ForumPosts);
        let post = self.rng.present(20).then(|| self.rng.id(posts) as u64);
        let thread = match post {
            Some(p) => self.thread_of_post(p) as i64,
            None => self.rng.id(self.n(Table::ForumThreads)),
        };
        out.int(thread);
        out.opt_int(post.map(|p| p as i64));
        self.report_tail(id, n, out);
    }

    fn help_wanted_posts(&mut self, id: u64, out: &mut RowBuf) {
        let n = self.n(Table::HelpWantedPosts);
        out.int(id as i64);
        self.rng.sentence(&mut self.s2, 2, 10);
        out.varchar(&self.s2, 255);
        let text = self.prose(id, 50, 400);
        out.text(text);
        out.varchar(self.rng.pick(HELP_CATEGORIES), 50);
        out.opt_text(match self.rng.below(100) {
            0..=59 => Some("open"),
            60..=79 => Some("closed"),
            80..=94 => Some("filled"),
            _ => None,
        });
        if self.rng.chance(25) {
            out.null();
        } else if self.rng.chance(50) {
            out.varchar(self.rng.pick(CITIES), 255);
        } else {
            self.rng.address(&mut self.s2);
            out.varchar(&self.s2, 255);
        }
        if self.rng.chance(30) {
            out.null();
        } else {
            out.varchar(self.rng.pick(BUDGETS), 100);
        }
        out.opt_text(match self.rng.below(100) {
            0..=59 => Some("message"),
            60..=74 => Some("email"),
            75..=89 => Some("phone"),
            _ => None,
        });
        out.int(self.rng.report_count());
        let by = self.user();
        out.int(by);
        let created = self.rng.created(id, n);
        out.ts(self.rng.present(3).then_some(created));
        let updated = self
            .rng
            .chance(30)
            .then(|| self.rng.after(created, 30 * DAY_S));
        out.ts(updated);
    }

    fn help_wanted_comments(&mut self, id: u64, out: &mut RowBuf) {
        let n = self.n(Table::HelpWantedComments);
        let posts = self.n(Table::HelpWantedPosts);
        out.int(id as i64);
        let post = (u128::from(id - 1) * u128::from(posts) / u128::from(n)) as i64 + 1;
        out.int(post);
        let text = self.prose(id, 20, 300);
        out.text(text);
        // Threaded replies; some point forward to a comment with a higher id (a reply re-parented
        // or imported out of order), which a loader must cope with.
        let parent = if id == 1 && n >= 2 {
            Some(2)
        } else {
            match self.rng.below(100) {
                0..=4 if id < n => Some(id + 1 + self.rng.below((n - id).min(3))),
                5..=44 if id > 1 => Some(id - 1 - self.rng.below((id - 1).min(5))),
                _ => None,
            }
        };
        out.opt_int(parent.map(|p| p as i64));
        let by = self.user();
        out.int(by);
        let created = self.rng.created(id, n);
        out.ts(self.rng.present(3).then_some(created));
        let updated = self
            .rng
            .chance(15)
            .then(|| self.rng.after(created, 5 * DAY_S));
        out.ts(updated);
    }

    fn help_wanted_reports(&mut self, id: u64, out: &mut RowBuf) {
        let n = self.n(Table::HelpWantedReports);
        out.int(id as i64);
        let post = self.rng.id(self.n(Table::HelpWantedPosts));
        out.int(post);
        self.report_tail(id, n, out);
    }

    fn indexing_jobs(&mut self, id: u64, out: &mut RowBuf) {
        let n = self.n(Table::IndexingJobs);
        let items = self.n(Table::ResourceItems);
        let rng = &mut self.rng;
        out.int(id as i64);
        // No foreign key: a few jobs outlive their (deleted) resource.
        let resource = if rng.chance(3) {
            items + rng.between(1, 1000)
        } else {
            rng.id(items) as u64
        };
        out.int(resource as i64);
        let status = rng.pick(&[
            "pending",
            "running",
            "completed",
            "completed",
            "completed",
            "failed",
        ]);
        out.text(status);
        let total = rng.between(1, 500) as i64;
        let pages = match status {
            "pending" => 0,
            "completed" => total,
            _ => rng.below(total as u64) as i64,
        };
        out.opt_int(rng.present(5).then_some(pages));
        out.opt_int(rng.present(5).then_some(total));
        if status == "failed" {
            out.text(rng.pick(ERRORS));
        } else {
            out.null();
        }
        let created = rng.created(id, n);
        let started = (status != "pending").then(|| rng.after(created, 3600));
        out.tstz(started.map(|t| (t, rng.tz())));
        let completed = match (status, started) {
            ("completed" | "failed", Some(s)) => Some(rng.after(s, 7200)),
            _ => None,
        };
        out.tstz(completed.map(|t| (t, rng.tz())));
        out.opt_int(rng.present(5).then(|| {
            if status == "failed" {
                rng.between(1, 5) as i64
            } else {
                0
            }
        }));
        let tz = rng.tz();
        out.tstz(rng.present(3).then_some((created, tz)));
        let updated = completed.or(started);
        out.tstz(updated.map(|t| (t, rng.tz())));
    }

    fn token_blacklist(&mut self, id: u64, out: &mut RowBuf) {
        let n = self.n(Table::TokenBlacklist);
        out.int(id as i64);
        // jti: a UUID-v4-shaped string, unique because its last group holds a bijection of the id.
        let r = self.rng.next_u64();
        let uniq = scramble32(id as u32);
        self.s2.clear();
        let _ = write!(
            self.s2,
            "{:08x}-{:04x}-4{:03x}-{:x}{:03x}-{:08x}{:04x}",
            r >> 32,
            (r >> 16) & 0xFFFF,
            r & 0xFFF,
            8 | ((r >> 12) & 3),
            (r >> 20) & 0xFFF,
            uniq,
            (r >> 40) & 0xFFFF
        );
        debug_assert_eq!(self.s2.len(), 36);
        out.text(&self.s2);
        let access = self.rng.chance(70);
        out.text(if access { "access" } else { "refresh" });
        let user = self.opt_user(10);
        out.opt_int(user);
        let revoked = self.rng.created(id, n);
        out.ts(Some(revoked));
        let lifetime = if access { 15 * 60 } else { 30 * DAY_S };
        out.ts(Some(self.rng.after(revoked, lifetime)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicU32, Ordering};
    use tokio_postgres::NoTls;

    /// Generates every table of `plan` into memory, exactly as [`load`] streams it.
    fn generate(plan: &Plan) -> Vec<(Table, Vec<u8>)> {
        Table::ALL
            .iter()
            .map(|&t| {
                let mut gen = Gen::new(t, plan);
                let mut out = RowBuf::with_capacity(1024);
                for unit in 1..=gen.units() {
                    gen.write(unit, &mut out);
                }
                (t, out.take().to_vec())
            })
            .collect()
    }

    /// Splits one COPY text line into unescaped fields (`None` = NULL).
    fn parse_line(line: &[u8]) -> Vec<Option<String>> {
        line.split(|&b| b == b'\t')
            .map(|f| {
                if f == b"\\N" {
                    return None;
                }
                let mut v = Vec::with_capacity(f.len());
                let mut it = f.iter();
                while let Some(&b) = it.next() {
                    if b == b'\\' {
                        v.push(match it.next() {
                            Some(b't') => b'\t',
                            Some(b'n') => b'\n',
                            Some(b'r') => b'\r',
                            Some(b'\\') => b'\\',
                            other => panic!("unexpected escape {other:?}"),
                        });
                    } else {
                        v.push(b);
                    }
                }
                Some(String::from_utf8(v).expect("utf-8"))
            })
            .collect()
    }

    #[test]
    fn plan_hits_the_total_and_keeps_every_table() {
        for rows in [
            0, 1, 20, 21, 22, 50, 200, 1_000, 12_345, 1_000_000, 5_000_000,
        ] {
            let p = Plan::new(rows);
            let total: u64 = p.counts.iter().sum();
            assert_eq!(total, rows.max(21), "rows = {rows}");
            assert!(p.counts.iter().all(|&n| n >= 1), "rows = {rows}: {p:?}");
            assert!(p.rows(Table::CardTags) <= p.rows(Table::Cards) * p.rows(Table::Tags));
            assert_eq!(plan(rows).total(), rows.max(21));
        }
        let p = Plan::new(1_000_000);
        let users = p.rows(Table::Users) as f64 / 1e6;
        assert!((0.04..0.07).contains(&users), "users share {users}");
        let mut by_size: Vec<_> = Table::ALL.iter().map(|&t| (p.rows(t), t)).collect();
        by_size.sort_by(|a, b| b.cmp(a));
        let top: HashSet<Table> = by_size[..5].iter().map(|&(_, t)| t).collect();
        let expected: HashSet<Table> = [
            Table::ForumPosts,
            Table::Reviews,
            Table::CardTags,
            Table::Cards,
            Table::HelpWantedComments,
        ]
        .into();
        assert_eq!(top, expected);
    }

    #[test]
    fn tables_const_matches_enum() {
        for (i, t) in Table::ALL.iter().enumerate() {
            assert_eq!(*t as usize, i);
            assert_eq!(t.name(), TABLES[i]);
        }
    }

    #[test]
    fn escaping_and_truncation() {
        let mut b = BytesMut::new();
        escape_copy_text(&mut b, "a\\b\tc\nd\re 日本\u{7}");
        assert_eq!(&b[..], "a\\\\b\\tc\\nd\\re 日本\u{7}".as_bytes());
        assert_eq!(truncate_chars("日本語", 2), "日本");
        assert_eq!(truncate_chars("abc", 5), "abc");
        assert_eq!(truncate_chars("ééé", 3), "ééé");
    }

    #[test]
    fn timestamps_format_like_postgres() {
        let fmt = |us: i64| {
            let mut b = BytesMut::new();
            write_timestamp(&mut b, us);
            String::from_utf8(b.to_vec()).unwrap()
        };
        assert_eq!(fmt(0), "1970-01-01 00:00:00");
        assert_eq!(fmt(1_709_251_199_999_999), "2024-02-29 23:59:59.999999");
        assert_eq!(fmt(1_640_995_200_500_000), "2022-01-01 00:00:00.5");
        assert_eq!(fmt(951_782_400_000_010), "2000-02-29 00:00:00.00001");
        assert_eq!(fmt(-1), "1969-12-31 23:59:59.999999");
        let mut out = RowBuf::with_capacity(64);
        out.tstz(Some((0, 330)));
        out.tstz(Some((0, -420)));
        out.end_row();
        assert_eq!(
            &out.take()[..],
            b"1970-01-01 05:30:00+05:30\t1969-12-31 17:00:00-07\n"
        );
    }

    #[test]
    fn unique_generators_are_unique() {
        let p = Plan::new(5_000_000);
        let n = p.rows(Table::Tags);
        let tags: HashSet<_> = (1..=n).map(tag_name).collect();
        assert_eq!(tags.len() as u64, n);
        let cats: HashSet<_> = (1..=200).map(resource_category_name).collect();
        assert_eq!(cats.len(), 200);
        let ids: HashSet<_> = (1..=1_000_000u32).map(scramble32).collect();
        assert_eq!(ids.len(), 1_000_000);
    }

    /// Every generated row has the right number of fields, respects the varchar limits, NOT NULL
    /// and UNIQUE constraints, and the output is byte-for-byte reproducible.
    #[test]
    fn generated_rows_are_well_formed_and_deterministic() {
        for rows in [21, 50, 200, 20_000] {
            let plan = Plan::new(rows);
            let first = generate(&plan);
            assert_eq!(first, generate(&plan), "rows = {rows}");
            for (table, data) in &first {
                let columns: Vec<&str> = table.columns().split(", ").collect();
                let lines: Vec<&[u8]> = data
                    .strip_suffix(b"\n")
                    .unwrap()
                    .split(|&b| b == b'\n')
                    .collect();
                assert_eq!(lines.len() as u64, plan.rows(*table), "{}", table.name());
                let mut unique: Vec<HashSet<String>> = vec![HashSet::new(); columns.len()];
                for line in lines {
                    let fields = parse_line(line);
                    assert_eq!(fields.len(), columns.len(), "{}: {line:?}", table.name());
                    for (i, f) in fields.iter().enumerate() {
                        let (limit, not_null, is_unique) = column_rules(table.name(), columns[i]);
                        match f {
                            None => assert!(!not_null, "{}.{} is NULL", table.name(), columns[i]),
                            Some(v) => {
                                if let Some(max) = limit {
                                    assert!(
                                        v.chars().count() <= max,
                                        "{}.{} too long: {v:?}",
                                        table.name(),
                                        columns[i]
                                    );
                                }
                                if is_unique {
                                    assert!(
                                        unique[i].insert(v.clone()),
                                        "{}.{} duplicate {v:?}",
                                        table.name(),
                                        columns[i]
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `(varchar limit, NOT NULL, UNIQUE)` of a column, read from the schema text.
    fn column_rules(table: &str, column: &str) -> (Option<usize>, bool, bool) {
        let start = CITYFORGE_SCHEMA_SQL
            .find(&format!("CREATE TABLE {table} ("))
            .expect("table in schema");
        let body = &CITYFORGE_SCHEMA_SQL[start..];
        let body = &body[..body.find(");").unwrap()];
        let line = body
            .lines()
            .map(str::trim)
            .find(|l| l.split_whitespace().next() == Some(column))
            .unwrap_or_else(|| panic!("{table}.{column} not in schema"));
        let limit = line
            .find("varchar(")
            .map(|i| line[i + 8..].split(')').next().unwrap().parse().unwrap());
        let not_null = line.contains("NOT NULL") || line.contains("PRIMARY KEY");
        let unique = line.contains("UNIQUE") || line.contains("PRIMARY KEY");
        (limit, not_null, unique)
    }

    // ----- tests against a real server (CITYFORGE_TEST_DATABASE_URL, else a throwaway one) -----

    const URL_VAR: &str = "CITYFORGE_TEST_DATABASE_URL";

    /// The server named by the variable, else the throwaway cluster of this test binary.
    fn test_url() -> Option<String> {
        match std::env::var(URL_VAR) {
            Ok(url) if !url.is_empty() => Some(url),
            _ => Some(
                crate::local_pg::LocalPg::shared()
                    .expect("start the throwaway PostgreSQL")
                    .url("postgres"),
            ),
        }
    }

    async fn connect(config: &tokio_postgres::Config) -> Client {
        let (client, connection) = config.connect(NoTls).await.expect("connect");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    /// A freshly created, UTF8-encoded database holding the CityForge schema; dropped on `drop_db`.
    struct TempDb {
        admin: Client,
        name: String,
        client: Client,
    }

    impl TempDb {
        async fn new(url: &str, label: &str) -> TempDb {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let config: tokio_postgres::Config = url.parse().expect("database URL");
            let admin = connect(&config).await;
            let name = format!(
                "cf_sample_{}_{}_{label}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            admin
                .batch_execute(&format!(
                    "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'"
                ))
                .await
                .expect("create database");
            let mut db_config = config.clone();
            db_config.dbname(&name);
            let client = connect(&db_config).await;
            create_schema(&client).await.expect("schema");
            TempDb {
                admin,
                name,
                client,
            }
        }

        async fn drop_db(self) {
            let TempDb {
                admin,
                name,
                client,
            } = self;
            drop(client);
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .expect("drop database");
        }
    }

    async fn count(client: &Client, table: &str) -> u64 {
        let row = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap();
        row.get::<_, i64>(0) as u64
    }

    async fn fingerprint(client: &Client) -> Vec<String> {
        let mut out = Vec::new();
        for table in TABLES {
            let order = if table == "card_tags" {
                "card_id, tag_id"
            } else {
                "id"
            };
            let sql = format!(
                "SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY {order}), '')) FROM {table} t"
            );
            out.push(client.query_one(&sql, &[]).await.unwrap().get(0));
        }
        out
    }

    #[tokio::test]
    async fn load_200_rows_into_postgres() {
        let Some(url) = test_url() else { return };
        let a = TempDb::new(&url, "a").await;
        let b = TempDb::new(&url, "b").await;
        let summary = load(&a.client, 200).await.expect("load a");
        assert_eq!(summary, plan(200));
        assert_eq!(summary.total(), 200);
        let mut sum = 0;
        for (table, n) in &summary.tables {
            let actual = count(&a.client, table).await;
            assert!(actual > 0, "{table} is empty");
            assert_eq!(actual, *n, "{table}");
            sum += actual;
        }
        assert_eq!(sum, summary.total());

        // Forward references in the self-referencing comments table.
        let forward: i64 = a
            .client
            .query_one(
                "SELECT count(*) FROM help_wanted_comments WHERE parent_id > id",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(forward >= 1);

        // Sequences are past max(id): a plain INSERT works.
        let id: i32 = a
            .client
            .query_one(
                "INSERT INTO tags (name) VALUES ('brand new') RETURNING id",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(id as u64, summary.rows("tags").unwrap() + 1);
        a.client
            .batch_execute("DELETE FROM tags WHERE name = 'brand new'")
            .await
            .unwrap();

        // The awkward values made it through COPY escaping intact.
        let sink: String = a
            .client
            .query_one("SELECT content FROM forum_posts WHERE id = 2", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(sink, KITCHEN_SINK);
        let checks = [
            "SELECT bool_and(password_hash ~ '^\\$2b\\$12\\$[./A-Za-z0-9]{53}$') FROM users",
            "SELECT count(*) FILTER (WHERE description IS NULL) > 0 FROM cards",
            "SELECT count(*) FILTER (WHERE extract(microseconds FROM created_date)::int % 1000000 <> 0) > 0 \
             AND count(*) FILTER (WHERE extract(microseconds FROM created_date)::int % 1000000 = 0) > 0 FROM forum_posts",
            "SELECT bool_or(is_first_post) AND NOT bool_and(is_first_post) FROM forum_posts",
        ];
        for sql in checks {
            let ok: bool = a.client.query_one(sql, &[]).await.unwrap().get(0);
            assert!(ok, "{sql}");
        }

        // Determinism: a second database gets identical data.
        let summary_b = load(&b.client, 200).await.expect("load b");
        assert_eq!(summary, summary_b);
        assert_eq!(fingerprint(&a.client).await, fingerprint(&b.client).await);

        // Loading into a non-empty schema fails cleanly (rolled back, table named).
        let err = load(&a.client, 200).await.expect_err("duplicate ids");
        assert_eq!(err.table(), Some("users"));
        assert_eq!(
            count(&a.client, "users").await,
            summary.rows("users").unwrap()
        );

        a.drop_db().await;
        b.drop_db().await;
    }

    /// Timing of a 1M-row load: `cargo test --release --lib sample -- --ignored --nocapture`.
    #[tokio::test]
    #[ignore = "slow; run by hand against CITYFORGE_TEST_DATABASE_URL"]
    async fn load_one_million_rows() {
        let Some(url) = test_url() else { return };
        let rows = std::env::var("CITYFORGE_SAMPLE_ROWS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000);
        let db = TempDb::new(&url, "big").await;
        let started = std::time::Instant::now();
        let summary = load(&db.client, rows).await.expect("load");
        let elapsed = started.elapsed();
        let size: i64 = db
            .client
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await
            .unwrap()
            .get(0);
        eprintln!(
            "loaded {} rows in {:.2?} ({:.0} rows/s); database size {} MiB",
            summary.total(),
            elapsed,
            summary.total() as f64 / elapsed.as_secs_f64(),
            size / (1024 * 1024)
        );
        for (table, n) in &summary.tables {
            eprintln!("  {table:<24} {n:>9}");
        }
        db.drop_db().await;
    }

    #[allow(dead_code)]
    fn load_future_is_send(client: &Client) {
        fn is_send<T: Send>(_: T) {}
        is_send(load(client, 10));
        is_send(create_schema(client));
    }
}
