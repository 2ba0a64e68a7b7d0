//! The rows of each table, generated one by one from the table's own PRNG stream.

mod community;
mod directory;

use super::*;

/// Generates the rows of one table. Each table has its own PRNG stream, so the data of one table
/// does not depend on how the others are generated.
pub(crate) struct Gen<'a> {
    pub(crate) table: Table,
    pub(crate) plan: &'a Plan,
    pub(crate) rng: Rng,
    pub(crate) s: String,
    pub(crate) s2: String,
}

impl<'a> Gen<'a> {
    pub(crate) fn new(table: Table, plan: &'a Plan) -> Gen<'a> {
        Gen {
            table,
            plan,
            rng: Rng::new(SEED ^ mix64(table as u64 + 1)),
            s: String::with_capacity(1024),
            s2: String::with_capacity(256),
        }
    }

    pub(crate) fn n(&self, t: Table) -> u64 {
        self.plan.rows(t)
    }

    /// How many times [`Gen::write`] is called: once per row, except `card_tags` (once per card).
    pub(crate) fn units(&self) -> u64 {
        match self.table {
            Table::CardTags => self.n(Table::Cards),
            t => self.n(t),
        }
    }

    pub(crate) fn user(&mut self) -> i64 {
        let n = self.n(Table::Users);
        self.rng.popular_id(n)
    }

    pub(crate) fn opt_user(&mut self, null_pct: u64) -> Option<i64> {
        if self.rng.chance(null_pct) {
            None
        } else {
            Some(self.user())
        }
    }

    /// A staff member (admins are users 1, 51, 101, ...).
    pub(crate) fn staff(&mut self) -> i64 {
        let admins = (self.n(Table::Users) - 1) / 50 + 1;
        1 + 50 * self.rng.below(admins) as i64
    }

    /// Main text column: the kitchen sink in row 2, prose otherwise.
    pub(crate) fn prose(&mut self, id: u64, min: usize, max: usize) -> &str {
        if id == 2 {
            KITCHEN_SINK
        } else {
            self.rng.paragraph(&mut self.s, min, max, 12);
            &self.s
        }
    }

    pub(crate) fn write(&mut self, unit: u64, out: &mut RowBuf) {
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
}
