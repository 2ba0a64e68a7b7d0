//! Connection strings with their passwords masked: what logs and errors may show of a URL, even
//! one that does not parse.

/// Replaces the password of a `postgres://user:password@…` URL (or a `password=` query
/// parameter) with `***`.
pub fn mask_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            if parsed.query_pairs().any(|(key, _)| key == "password") {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(key, value)| {
                        let value = if key == "password" {
                            "***".to_owned()
                        } else {
                            value.into_owned()
                        };
                        (key.into_owned(), value)
                    })
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        Err(_) => mask_unparsed(url),
    }
}

/// Masks the password of a connection string that does not parse (a bad port, a malformed host):
/// the user-info of `scheme://user:password@…` up to the last `@`, and every `password=` value of
/// a key=value string or query. Anything it cannot place is hidden whole.
fn mask_unparsed(text: &str) -> String {
    let mut masked = match text.find("://") {
        Some(scheme_end) => {
            let authority_start = scheme_end + 3;
            match text[authority_start..].rfind('@') {
                Some(at) => {
                    let at = authority_start + at;
                    let userinfo = &text[authority_start..at];
                    match userinfo.find(':') {
                        Some(colon) => {
                            format!("{}:***{}", &text[..authority_start + colon], &text[at..])
                        }
                        None => text.to_owned(),
                    }
                }
                None => text.to_owned(),
            }
        }
        None => text.to_owned(),
    };
    // `password=value` in a key=value string or a query, quoted or not.
    let mut from = 0;
    while let Some(found) = masked[from..].to_ascii_lowercase().find("password=") {
        let value_start = from + found + "password=".len();
        let rest = &masked[value_start..];
        let value_len = if let Some(quoted) = rest.strip_prefix('\'') {
            quoted.find('\'').map_or(rest.len(), |end| end + 2)
        } else {
            rest.find(|c: char| c.is_whitespace() || c == '&' || c == '#')
                .unwrap_or(rest.len())
        };
        masked.replace_range(value_start..value_start + value_len, "***");
        from = value_start + 3;
    }
    masked
}
