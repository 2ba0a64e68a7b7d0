//! Rows of the directory: users, tags, cards and their submissions, modifications and reviews,
//! resources.

use super::*;

impl Gen<'_> {
    pub(crate) fn users(&mut self, id: u64, out: &mut RowBuf) {
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

    pub(crate) fn tags(&mut self, id: u64, out: &mut RowBuf) {
        let n = self.n(Table::Tags);
        out.int(id as i64);
        out.varchar(&tag_name(id), 500);
        let t = self.rng.created(id, n);
        out.ts(self.rng.present(10).then_some(t));
    }

    /// `name .. contact_name`, shared by cards, card submissions and card modifications.
    pub(crate) fn card_fields(&mut self, id: u64, null_pct: u64, out: &mut RowBuf) {
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

    pub(crate) fn image_url(&mut self, id: u64, out: &mut RowBuf) {
        if self.rng.chance(40) {
            out.null();
        } else {
            self.s2.clear();
            let ext = self.rng.pick(IMAGE_EXTS);
            let _ = write!(self.s2, "https://cdn.cityforge.example/img/{id:06}.{ext}");
            out.varchar(&self.s2, 255);
        }
    }

    pub(crate) fn cards(&mut self, id: u64, out: &mut RowBuf) {
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
    pub(crate) fn card_tags(&mut self, card: u64, out: &mut RowBuf) {
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
    pub(crate) fn submission_tail(&mut self, out: &mut RowBuf) -> Option<&'static str> {
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

    pub(crate) fn card_submissions(&mut self, id: u64, out: &mut RowBuf) {
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

    pub(crate) fn card_modifications(&mut self, id: u64, out: &mut RowBuf) {
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

    pub(crate) fn reviews(&mut self, id: u64, out: &mut RowBuf) {
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

    pub(crate) fn resource_categories(&mut self, id: u64, out: &mut RowBuf) {
        out.int(id as i64);
        out.text(&resource_category_name(id));
        out.opt_int(self.rng.present(10).then_some(id as i64 * 10));
        let t = self.rng.created(id, 1_000_000);
        out.ts(self.rng.present(10).then_some(t));
    }

    pub(crate) fn quick_access_items(&mut self, id: u64, out: &mut RowBuf) {
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

    pub(crate) fn resource_items(&mut self, id: u64, out: &mut RowBuf) {
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

    pub(crate) fn resource_config(&mut self, id: u64, out: &mut RowBuf) {
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
}
