//! Rows of the community: forum, help wanted, and the operational tables (indexing jobs, revoked
//! tokens).

use super::*;

impl Gen<'_> {
    pub(crate) fn forum_categories(&mut self, id: u64, out: &mut RowBuf) {
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

    pub(crate) fn forum_category_requests(&mut self, id: u64, out: &mut RowBuf) {
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
    pub(crate) fn thread_of_post(&self, post: u64) -> u64 {
        let (threads, posts) = (self.n(Table::ForumThreads), self.n(Table::ForumPosts));
        (u128::from(post - 1) * u128::from(threads) / u128::from(posts)) as u64 + 1
    }

    pub(crate) fn forum_threads(&mut self, id: u64, out: &mut RowBuf) {
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

    pub(crate) fn forum_posts(&mut self, id: u64, out: &mut RowBuf) {
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
    pub(crate) fn report_tail(&mut self, id: u64, n: u64, out: &mut RowBuf) {
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

    pub(crate) fn forum_reports(&mut self, id: u64, out: &mut RowBuf) {
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

    pub(crate) fn help_wanted_posts(&mut self, id: u64, out: &mut RowBuf) {
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

    pub(crate) fn help_wanted_comments(&mut self, id: u64, out: &mut RowBuf) {
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

    pub(crate) fn help_wanted_reports(&mut self, id: u64, out: &mut RowBuf) {
        let n = self.n(Table::HelpWantedReports);
        out.int(id as i64);
        let post = self.rng.id(self.n(Table::HelpWantedPosts));
        out.int(post);
        self.report_tail(id, n, out);
    }

    pub(crate) fn indexing_jobs(&mut self, id: u64, out: &mut RowBuf) {
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

    pub(crate) fn token_blacklist(&mut self, id: u64, out: &mut RowBuf) {
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
