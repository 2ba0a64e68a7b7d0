//! The vocabulary the rows are made of: names, places, tags, categories, and the kitchen sink of
//! characters every escaping rule must survive.

use super::*;

/// Everything nasty at once; the main text column of row 2 of every table carries it, so even the
/// smallest sample exercises each escaping rule.
pub(crate) const KITCHEN_SINK: &str =
    "Kitchen sink: é ü ß ñ Ω 日本語 🍰 👩\u{200d}👩\u{200d}👧 | \"double\" 'single' | \
back\\slash \\N \\. C:\\path\\ | tab\there | nl\nhere | crlf\r\nhere | cr\rhere | \
bell\u{7} esc\u{1b} del\u{7f} | ls\u{2028}ps\u{2029} | zw\u{200b}sp rtl\u{202e}x | end\\";

/// Awkward fragments sprinkled into random text.
pub(crate) const SPICES: &[&str] = &[
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
pub(crate) const STARTERS: &[&str] = &[
    "We", "Our team", "The owner", "Everyone", "Locals", "This place", "Friendly staff", "Please",
    "Thanks to", "Neighbors", "Come", "Honestly", "Last week", "Every Sunday", "The city",
    "Volunteers", "My family", "Parents", "Kids", "Visitors", "Staff", "The menu", "Prices",
    "Parking",
];

#[rustfmt::skip]
pub(crate) const WORDS: &[&str] = &[
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
pub(crate) const FIRST_NAMES: &[&str] = &[
    "Ada", "Zoë", "José", "Søren", "Björn", "Łukasz", "Amélie", "Chloé", "Noah", "Liam", "Emma",
    "Olivia", "Mia", "Lucas", "Hiro", "Yuki", "太郎", "花子", "Mohammed", "Fatima", "Aisha", "Ivan",
    "Olga", "Siobhán", "Seán", "Renée", "François", "Zeynep", "Ayşe", "Priya", "Arjun", "Kwame",
    "Amara", "Mateo", "Sofía", "Jürgen", "Åsa", "Ólafur", "Grace", "Henry", "Jack", "Lily", "Ella",
    "Leo", "Max", "Sam", "Alex", "Kim", "Mary-Jane", "Jean-Luc",
];

#[rustfmt::skip]
pub(crate) const LAST_NAMES: &[&str] = &[
    "Müller", "García", "O'Brien", "Nguyen", "山田", "Smith", "Johnson", "Brown", "Dubois", "Rossi",
    "Kowalski", "Novák", "Öztürk", "Jensen", "Andersson", "Fernández", "López", "Schmidt",
    "Schröder", "Kim", "Park", "Chen", "Wang", "Singh", "Patel", "Okafor", "Mensah", "Ivanova",
    "Petrov", "D'Angelo", "van der Berg", "MacDonald", "Smith-Jones", "Ó Súilleabháin", "Håkansson",
    "Lefèvre", "Brontë", "Taylor", "Wilson", "Nakamura",
];

#[rustfmt::skip]
pub(crate) const EMAIL_DOMAINS: &[&str] = &[
    "example.com", "example.org", "example.net", "mail.example", "example.de", "bücher.example",
];

#[rustfmt::skip]
pub(crate) const BUSINESS_KINDS: &[&str] = &[
    "Diner", "Bakery", "Café", "Hardware", "Books", "Garden Center", "Auto Repair", "Dental Clinic",
    "Yoga Studio", "Bike Shop", "Pizzeria", "Sushi Bar", "Food Pantry", "Community Center",
    "Plumbing", "Electric", "Pet Grooming", "Barbershop", "Florist", "Brewery", "日本料理", "Bäckerei",
    "Crêperie", "Taquería", "Laundromat", "Thrift Store", "Music School", "Law Office",
];

#[rustfmt::skip]
pub(crate) const ADJECTIVES: &[&str] = &[
    "Golden", "Blue", "Green", "Sunny", "Old Town", "Riverside", "Main Street", "Corner", "Happy",
    "Lucky", "Northside", "Maple", "Cedar", "Eastside", "Little", "Big", "Royal", "Über", "Café",
];

#[rustfmt::skip]
pub(crate) const STREETS: &[&str] = &[
    "Main", "Oak", "Maple", "Cedar", "Elm", "Pine", "Washington", "Lake", "Hill", "Park", "River",
    "Church", "Market", "Bahnhof", "Königs", "Élysée",
];

pub(crate) const STREET_SUFFIXES: &[&str] =
    &["St", "Ave", "Rd", "Blvd", "Ln", "Way", "Dr", "Straße"];

#[rustfmt::skip]
pub(crate) const CITIES: &[&str] = &[
    "Springfield", "Riverside", "Fairview", "Mülheim", "Saint-Étienne", "Québec", "São Paulo", "東京",
    "Oakland", "Portland", "Madison", "Georgetown",
];

pub(crate) const SPECIAL_TAGS: &[&str] = &[
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
pub(crate) const TAG_WORDS: &[&str] = &[
    "bakery", "coffee", "restaurant", "parks", "library", "health", "dentist", "pharmacy",
    "hardware", "books", "music", "art", "kids", "seniors", "pets", "veterinary", "auto-repair",
    "plumbing", "electrician", "groceries", "farmers-market", "volunteering", "sports", "fitness",
    "yoga", "bikes", "transit", "housing", "legal-aid", "food-bank", "thrift", "florist", "brewery",
    "pizza", "sushi", "vegan", "gluten-free", "late-night", "wifi", "wheelchair-accessible",
    "family-owned", "women-owned", "lgbtq-friendly", "outdoor-seating", "delivery", "takeout",
    "free-parking", "open-sunday", "crème-brûlée", "größe",
];

#[rustfmt::skip]
pub(crate) const RESOURCE_CATEGORIES: &[&str] = &[
    "Emergency", "Health", "Housing", "Food", "Transportation", "Education", "Legal Aid",
    "Utilities", "Seniors", "Youth", "Parks & Recreation", "Municipal Services", "Santé & Soins",
    "日本語サポート", "Employment", "Mental Health", "Animal Services", "Libraries", "Waste & Recycling",
    "Public Safety",
];

/// `(identifier, title, subtitle, phone, color, icon)`.
#[rustfmt::skip]
pub(crate) const QUICK_ACCESS: &[(&str, &str, &str, &str, &str, &str)] = &[
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
pub(crate) const CONFIG_KEYS: &[&str] = &[
    "site_title", "site_description", "footer_json", "contact_email", "primary_color", "logo_url",
    "enable_forum", "enable_help_wanted", "max_upload_mb", "welcome_message", "maintenance_mode",
    "analytics_id", "timezone", "default_locale", "support_phone", "social_links", "terms_url",
    "privacy_url", "about_html", "banner_text",
];

pub(crate) const CONFIG_VALUES: &[&str] = &[
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
pub(crate) const FORUM_CATEGORIES: &[(&str, &str)] = &[
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
pub(crate) const REPORT_REASONS: &[&str] = &[
    "spam", "spam", "harassment", "off-topic", "misinformation", "inappropriate", "duplicate",
    "scam", "other", "¡spam! 🚫", "contenu inapproprié",
];

#[rustfmt::skip]
pub(crate) const HELP_CATEGORIES: &[&str] = &[
    "hiring", "volunteer", "moving", "tutoring", "pet-sitting", "repairs", "childcare", "gardening",
    "tech-help", "cleaning", "other",
];

#[rustfmt::skip]
pub(crate) const BUDGETS: &[&str] = &[
    "$50", "$20/hour", "€30 per hour", "negotiable", "¥5000", "free 🍰", "", "$1,000–$1,500",
    "Will pay in pie 🥧", "\"fair\" price",
];

pub(crate) const IMAGE_EXTS: &[&str] = &["jpg", "png", "webp", "jpeg"];

#[rustfmt::skip]
pub(crate) const ICONS: &[&str] = &[
    "building", "hospital", "home", "utensils", "bus", "book", "scale", "zap", "users", "heart",
    "tree", "phone",
];

pub(crate) const ERRORS: &[&str] = &[
    "Timeout after 30s",
    "HTTP 404: Not Found",
    "Traceback (most recent call last):\n  File \"indexer.py\", line 42, in crawl\nConnectionError: [Errno 111] Connection refused",
    "SSL: CERTIFICATE_VERIFY_FAILED\r\n",
    "robots.txt disallows /",
    "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff",
    "",
];

/// UTC offsets (minutes) for `timestamptz` values; PostgreSQL stores the instant either way.
pub(crate) const TZ_OFFSETS: &[i32] = &[0, 0, 0, 0, 60, 120, -300, -420, 330, 540, -210, 345];

/// Unique tag name for tag id `i` (1-based).
pub(crate) fn tag_name(i: u64) -> Cow<'static, str> {
    let idx = (i - 1) as usize;
    if let Some(s) = SPECIAL_TAGS.get(idx) {
        return Cow::Borrowed(s);
    }
    numbered(TAG_WORDS, idx - SPECIAL_TAGS.len(), " ")
}

/// Unique resource category name for category id `i` (1-based).
pub(crate) fn resource_category_name(i: u64) -> Cow<'static, str> {
    numbered(RESOURCE_CATEGORIES, (i - 1) as usize, " ")
}

/// `base[j]` for the first round, then `"{base} {round}"`: unique for every `j` as long as no base
/// entry itself ends in `sep` + digits.
pub(crate) fn numbered(base: &[&'static str], j: usize, sep: &str) -> Cow<'static, str> {
    let word = base[j % base.len()];
    match j / base.len() {
        0 => Cow::Borrowed(word),
        round => Cow::Owned(format!("{word}{sep}{}", round + 1)),
    }
}

/// Lower-case ASCII slug: runs of anything but `[a-z0-9]` become one `-`.
pub(crate) fn slugify(out: &mut String, s: &str) {
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
