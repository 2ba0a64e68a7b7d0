//! Progress of an import: a bar from the bytes read of the file on a terminal, a spinner for
//! standard input, and progress events in the logs without a terminal.

use crate::support::{
    assert_bar_ends_at_100, cli, empty_cityforge, number, on_a_terminal, progress_events,
    sample_db, shown_percentages,
};
use crate::{assert_ok, export, stderr};

#[tokio::test]
async fn import_bar_shows_a_percentage_from_the_bytes_read() {
    let source = sample_db("progressbarsrc", 3_000).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.json.gz");
    export(&source, &file, &[]);
    let binary = env!("CARGO_BIN_EXE_cityforge-data");
    let target = empty_cityforge("progressbar").await;
    let (ok, screen) = on_a_terminal(
        &format!("{binary} import -i {}", file.display()),
        &[("DATABASE_URL", &target.url)],
    );
    assert!(ok, "{screen}");
    assert_bar_ends_at_100(&screen);
    // The stored (compressed) size is the total.
    let size = std::fs::metadata(&file).unwrap().len();
    let total = format!(" of {} read", indicatif::HumanBytes(size));
    assert!(screen.contains(&total), "{total}\n{screen}");
    // From standard input the size is unknown: a spinner with counts, no percentage.
    let target = empty_cityforge("progressstdin").await;
    let (ok, screen) = on_a_terminal(
        &format!("{binary} import -i - < {}", file.display()),
        &[("DATABASE_URL", &target.url)],
    );
    assert!(ok, "{screen}");
    assert!(screen.contains(" rows, "), "{screen}");
    assert!(shown_percentages(&screen).is_empty(), "{screen}");
}

#[tokio::test]
async fn progress_events_in_json_logs_for_an_import() {
    let source = sample_db("progressjsonsrc", 3_000).await;
    let dir = tempfile::tempdir().unwrap();
    // Uncompressed, so the file is read in several chunks.
    let file = dir.path().join("export.json");
    export(&source, &file, &[]);
    let size = std::fs::metadata(&file).unwrap().len() as f64;
    let target = empty_cityforge("progressjson").await;
    let output = cli()
        .args(["--log-format", "json", "--progress-interval", "0.000001"])
        .args(["import", "-i"])
        .arg(&file)
        .env("DATABASE_URL", &target.url)
        .output()
        .unwrap();
    assert_ok(&output);
    let stderr = stderr(&output);
    let events = progress_events(&stderr);
    assert!(events.len() >= 5, "{stderr}");
    for event in &events {
        assert_eq!(number(event, "input_size"), size, "{event}");
        let read = number(event, "input_read");
        assert!(read > 0.0 && read <= size, "{event}");
        // The percentage is the share of the file read, rounded down to a tenth.
        let percent = number(event, "percent");
        assert_eq!(percent, (read / size * 1000.0).floor() / 10.0, "{event}");
        assert!(event["model"].is_string(), "{event}");
    }
    for pair in events.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(number(a, "rows") < number(b, "rows"), "{a}\n{b}");
        assert!(number(a, "bytes") < number(b, "bytes"), "{a}\n{b}");
        assert!(
            number(a, "input_read") <= number(b, "input_read"),
            "{a}\n{b}"
        );
    }
    let (first, last) = (&events[0], events.last().unwrap());
    assert!(
        number(first, "percent") < number(last, "percent"),
        "{first}\n{last}"
    );
}
