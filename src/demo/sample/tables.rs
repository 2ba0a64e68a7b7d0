//! The 21 tables and how many rows each gets for a requested size.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Table {
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
    pub(crate) const ALL: [Table; 21] = [
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

    pub(crate) fn name(self) -> &'static str {
        TABLES[self as usize]
    }

    /// The columns the generator writes, in schema order.
    pub(crate) fn columns(self) -> &'static str {
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
    pub(crate) fn share(self) -> (u64, u64) {
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
pub(crate) struct Plan {
    pub(crate) counts: [u64; 21],
}

impl Plan {
    pub(crate) fn new(rows: u64) -> Plan {
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

    pub(crate) fn rows(&self, t: Table) -> u64 {
        self.counts[t as usize]
    }
}
