//! `[subset]`: the ready pipelines/prod-to-staging-subset.toml copies a slice of production whose
//! rows per model equal an independent SQL computation and whose foreign keys all hold; cycles
//! in the data and in the schema converge; plans that cannot work are refused before any read.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::{empty_cityforge, fresh_db, sample_db, TestDb};
use crate::{run_cli, stderr, write_pipeline};

/// `id`s of a table, ascending.
pub(crate) async fn ids(db: &TestDb, table: &str) -> Vec<i32> {
    db.connect()
        .await
        .query(&format!("SELECT id FROM {table} ORDER BY id"), &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// The line of a command's output that starts with `model` (after indentation).
fn line_of<'a>(output: &'a str, model: &str) -> &'a str {
    output
        .lines()
        .find(|l| l.split_whitespace().next() == Some(model))
        .unwrap_or_else(|| panic!("{model} in {output}"))
}

/// Every foreign key of the database: (table, constraint, validated).
async fn foreign_keys(db: &TestDb) -> Vec<(String, String, bool)> {
    db.connect()
        .await
        .query(
            "SELECT conrelid::regclass::text, conname::text, convalidated FROM pg_constraint \
             WHERE contype = 'f' ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect()
}

/// The rows the ready subset pipeline must copy, computed in SQL on `production` with temporary
/// tables (which the tool itself may not create there): `expected_<table>(id)` per table with an
/// `id`, and `expected_card_tags`. Written from the pipeline's comment, not from the code.
async fn expected_slice(production: &TestDb, seed: &str) {
    let client = production.connect().await;
    // 1. 5 % of the users: the first 60 bits of md5(seed ‖ id) below ⌊2^60 × 5 / 100⌋.
    // 2. Down, along the file's follow list.
    client
        .batch_execute(&format!(
            "CREATE TABLE expected_users AS SELECT id FROM users \
               WHERE ('x' || substr(md5('{seed}' || id::text), 1, 15))::bit(60)::bigint \
                     < floor(2::numeric ^ 60 * 5 / 100);
             CREATE TABLE down_users AS SELECT id FROM expected_users;
             CREATE TABLE down_cards AS SELECT id FROM cards WHERE created_by IN (SELECT id FROM down_users);
             CREATE TABLE expected_card_tags AS
               SELECT card_id, tag_id FROM card_tags WHERE card_id IN (SELECT id FROM down_cards);
             CREATE TABLE expected_cards AS SELECT id FROM down_cards;
             CREATE TABLE expected_card_submissions AS
               SELECT id FROM card_submissions WHERE submitted_by IN (SELECT id FROM down_users);
             CREATE TABLE expected_card_modifications AS
               SELECT id FROM card_modifications WHERE submitted_by IN (SELECT id FROM down_users);
             CREATE TABLE expected_reviews AS
               SELECT id FROM reviews WHERE user_id IN (SELECT id FROM down_users);
             CREATE TABLE expected_forum_threads AS
               SELECT id FROM forum_threads WHERE created_by IN (SELECT id FROM down_users);
             CREATE TABLE expected_forum_posts AS
               SELECT id FROM forum_posts WHERE created_by IN (SELECT id FROM down_users)
                 OR thread_id IN (SELECT id FROM expected_forum_threads);
             CREATE TABLE expected_forum_reports AS
               SELECT id FROM forum_reports WHERE reported_by IN (SELECT id FROM down_users);
             CREATE TABLE expected_forum_category_requests AS
               SELECT id FROM forum_category_requests WHERE requested_by IN (SELECT id FROM down_users);
             CREATE TABLE expected_help_wanted_posts AS
               SELECT id FROM help_wanted_posts WHERE created_by IN (SELECT id FROM down_users);
             CREATE TABLE expected_help_wanted_comments AS
               WITH RECURSIVE thread(id) AS (
                 SELECT id FROM help_wanted_comments
                   WHERE created_by IN (SELECT id FROM down_users)
                      OR post_id IN (SELECT id FROM expected_help_wanted_posts)
                 UNION
                 SELECT c.id FROM help_wanted_comments c JOIN thread t ON c.parent_id = t.id)
               SELECT id FROM thread;
             CREATE TABLE expected_help_wanted_reports AS
               SELECT id FROM help_wanted_reports WHERE reported_by IN (SELECT id FROM down_users);
             CREATE TABLE expected_tags AS SELECT id FROM tags;
             CREATE TABLE expected_resource_categories AS SELECT id FROM resource_categories;
             CREATE TABLE expected_resource_items AS SELECT id FROM resource_items;
             CREATE TABLE expected_quick_access_items AS SELECT id FROM quick_access_items;
             CREATE TABLE expected_resource_config AS SELECT id FROM resource_config;
             CREATE TABLE expected_forum_categories AS SELECT id FROM forum_categories;
             CREATE TABLE expected_token_blacklist AS SELECT id FROM token_blacklist WHERE false;"
        ))
        .await
        .unwrap();
    // Keys and statistics, so that the fixed point below joins by hash or index at any size.
    let expected = production
        .texts(
            "SELECT tablename::text FROM pg_tables \
             WHERE tablename LIKE 'expected\\_%' AND tablename <> 'expected_card_tags'",
        )
        .await;
    for table in &expected {
        client
            .batch_execute(&format!("ALTER TABLE {table} ADD PRIMARY KEY (id)"))
            .await
            .unwrap();
    }
    client.batch_execute("ANALYZE").await.unwrap();
    // 3. Up: whatever a selected row references, until a pass adds nothing.
    let references: Vec<(String, String, String)> = client
        .query(
            "SELECT c.conrelid::regclass::text, a.attname::text, c.confrelid::regclass::text \
             FROM pg_constraint c \
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
             WHERE c.contype = 'f' AND c.conrelid::regclass::text NOT LIKE 'expected%' \
               AND c.conrelid::regclass::text <> 'indexing_jobs'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    loop {
        let mut added = 0;
        for (from, column, to) in &references {
            let rows = if from == "card_tags" {
                "SELECT card_id, tag_id FROM expected_card_tags".to_owned()
            } else {
                format!("SELECT id FROM expected_{from}")
            };
            let key = if from == "card_tags" {
                "(x.card_id, x.tag_id)"
            } else {
                "x.id"
            };
            added += client
                .execute(
                    &format!(
                        "INSERT INTO expected_{to} SELECT DISTINCT x.{column} FROM {from} x \
                         WHERE {key} IN ({rows}) AND x.{column} IS NOT NULL \
                           AND NOT EXISTS (SELECT FROM expected_{to} e WHERE e.id = x.{column})"
                    ),
                    &[],
                )
                .await
                .unwrap();
        }
        if added == 0 {
            break;
        }
        client.batch_execute("ANALYZE").await.unwrap();
    }
}

#[tokio::test]
async fn the_ready_subset_pipeline_copies_exactly_the_slice_with_every_key_valid() {
    // CITYFORGE_SUBSET_TEST_ROWS=5000000 runs the same check on the benchmark's size.
    let rows = std::env::var("CITYFORGE_SUBSET_TEST_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6_000);
    let production = sample_db("subsetprod", rows).await;
    let staging = empty_cityforge("subsetstaging").await;
    let dir = tempfile::tempdir().unwrap();
    let pipeline =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/prod-to-staging-subset.toml");
    let seed = "test-seed";
    let env = [
        ("PRODUCTION_DATABASE_URL", production.url.as_str()),
        ("STAGING_DATABASE_URL", staging.url.as_str()),
        ("SANITIZE_SECRET", "s"),
        ("SUBSET_SEED", seed),
    ];
    let pipeline = pipeline.to_str().unwrap();

    // Before anything is written, check and the dry run tell what the subset copies.
    let check = run_cli(&["check", "--connect", pipeline], &env, dir.path());
    assert!(check.status.success(), "{}", stderr(&check));
    let listed = String::from_utf8_lossy(&check.stdout).into_owned();
    let dry = run_cli(&["run", "--dry-run", pipeline], &env, dir.path());
    assert!(dry.status.success(), "{}", stderr(&dry));
    let planned = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(
        ids(&staging, "users").await.is_empty(),
        "nothing written yet"
    );

    let output = run_cli(&["run", pipeline], &env, dir.path());
    assert!(output.status.success(), "{}", stderr(&output));

    // Every foreign key of the schema is there and validated in staging (the load drops and
    // adds them back): no copied row points at a row that was not copied.
    let keys = foreign_keys(&staging).await;
    assert_eq!(keys.len(), foreign_keys(&production).await.len());
    assert!(keys.iter().all(|(_, _, valid)| *valid), "{keys:?}");

    // Per model, exactly the rows the independent computation names.
    expected_slice(&production, seed).await;
    let roots = ids(&production, "down_users").await.len();
    let all_users = ids(&production, "users").await.len();
    assert!(
        roots * 100 > all_users * 2 && roots * 100 < all_users * 9,
        "5 % of {all_users} users sampled, got {roots}"
    );
    let mut copied = BTreeMap::new();
    for table in cityforge_data::demo::sample::TABLES {
        let staged = match table {
            "card_tags" => {
                let want = production
                    .texts("SELECT card_id || ',' || tag_id FROM expected_card_tags ORDER BY 1")
                    .await;
                let got = staging
                    .texts("SELECT card_id || ',' || tag_id FROM card_tags ORDER BY 1")
                    .await;
                assert_eq!(got, want, "card_tags");
                got.len()
            }
            "indexing_jobs" => ids(&staging, table).await.len(),
            _ => {
                let got = ids(&staging, table).await;
                let want = ids(&production, &format!("expected_{table}")).await;
                assert_eq!(got, want, "{table}");
                got.len()
            }
        };
        copied.insert(table.to_string(), staged);
    }
    assert_eq!(copied["indexing_jobs"], 0);
    assert!(copied["help_wanted_comments"] > 0 && copied["forum_posts"] > 0);
    assert!(
        copied["users"] > roots,
        "authors and reviewers the slice references came up"
    );

    // What check and the dry run announced is what was copied.
    for (model, table) in [
        ("User", "users"),
        ("card_tags", "card_tags"),
        ("HelpWantedComment", "help_wanted_comments"),
        ("TokenBlacklist", "token_blacklist"),
    ] {
        let count = copied[table];
        let line = line_of(&listed, model);
        assert_eq!(
            line.split_whitespace().nth(1),
            Some(count.to_string().as_str()),
            "{line}"
        );
        let line = line_of(&planned, model);
        assert!(line.contains(&format!(" {count} of ~")), "{line}");
    }
}

/// A schema whose foreign keys form a cycle (team ↔ person) and a self-reference (a mentor
/// ring), plus rows outside both.
const RING: &str = "
    CREATE TABLE team (id int PRIMARY KEY, captain_id int);
    CREATE TABLE person (id int PRIMARY KEY, team_id int REFERENCES team, mentor_id int REFERENCES person);
    ALTER TABLE team ADD FOREIGN KEY (captain_id) REFERENCES person DEFERRABLE INITIALLY DEFERRED;
    CREATE TABLE note (person_id int REFERENCES person, body text);
    BEGIN;
    SET CONSTRAINTS ALL DEFERRED;
    INSERT INTO team SELECT t, t FROM generate_series(1, 10) t;
    INSERT INTO team SELECT t, 100 + t FROM generate_series(11, 15) t;
    -- persons 1..100: a mentor ring; 101..150: no mentor, teams 11..15.
    INSERT INTO person SELECT i, i % 10 + 1, i % 100 + 1 FROM generate_series(1, 100) i;
    INSERT INTO person SELECT i, 11 + i % 5, NULL FROM generate_series(101, 150) i;
    INSERT INTO note SELECT i, 'n' || i FROM generate_series(1, 150) i;
    COMMIT;";

/// `ring_pipeline` reading with two connections on the shared snapshot, and writing an export
/// document `copy.json` beside the database.
fn ring_pipeline_parallel_with_file(source: &TestDb, target: &TestDb, subset: &str) -> String {
    ring_pipeline(source, target, subset).replacen("\n\n[subset]", "\njobs = 2\n\n[subset]", 1)
        + "\n[[sinks]]\ntype = \"export_file\"\nlocation = \"copy.json\"\n"
}

fn ring_pipeline(source: &TestDb, target: &TestDb, subset: &str) -> String {
    format!(
        "[source]\ntype = \"postgres\"\nurl = \"{}\"\n\n[subset]\n{subset}\n\n\
         [[sinks]]\ntype = \"postgres\"\nurl = \"{}\"\nmode = \"skip\"\n",
        source.url, target.url
    )
}

#[tokio::test]
async fn cycles_in_the_data_and_in_the_schema_converge() {
    let source = fresh_db("ringsrc").await;
    source.connect().await.batch_execute(RING).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let schema_only = RING.split("BEGIN;").next().unwrap();
    let cases = [
        // One person: the ring of mentors brings all 100 and their teams; the teams' captains
        // are among them. Notes are not followed: none.
        (
            "roots = [{ model = \"person\", where = [{ column = \"id\", op = \"=\", value = 1 }] }]",
            (1..=100).collect::<Vec<i32>>(),
            (1..=10).collect::<Vec<i32>>(),
            0,
        ),
        // Team 11 and its members (101..150 with i % 5 = 0), followed down, and their notes. Up:
        // team 11's captain 111 plays in team 12, whose captain 112 plays in 13, … until 115, a
        // member: a cycle through two tables. Only the members' notes come.
        (
            "roots = [{ model = \"team\", where = [{ column = \"id\", op = \"=\", value = 11 }] }]\n\
             follow = [\"person.team_id\", \"note.person_id\"]",
            {
                let mut persons: Vec<i32> = (101..=150).filter(|i| i % 5 == 0).collect();
                persons.extend([111, 112, 113, 114]);
                persons.sort();
                persons
            },
            vec![11, 12, 13, 14, 15],
            10,
        ),
    ];
    for (index, (subset, persons, teams, notes)) in cases.into_iter().enumerate() {
        // The second case also reads in parallel and writes a file: the same slice everywhere.
        for parallel in [false, true].into_iter().take(index + 1) {
            let target = fresh_db("ringdst").await;
            target
                .connect()
                .await
                .batch_execute(schema_only)
                .await
                .unwrap();
            let text = match parallel {
                false => ring_pipeline(&source, &target, subset),
                true => ring_pipeline_parallel_with_file(&source, &target, subset),
            };
            let path = write_pipeline(dir.path(), &format!("ring{index}.toml"), &text);
            let output = run_cli(&["run", path.to_str().unwrap()], &[], dir.path());
            assert!(output.status.success(), "{subset}: {}", stderr(&output));
            assert_eq!(ids(&target, "person").await, persons, "{subset}");
            assert_eq!(ids(&target, "team").await, teams, "{subset}");
            let copied_notes = target.texts("SELECT count(*)::text FROM note").await;
            assert_eq!(copied_notes, [notes.to_string()], "{subset}");
            if parallel {
                let document: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(dir.path().join("copy.json")).unwrap())
                        .unwrap();
                let mut in_file: Vec<i64> = document["data"]["person"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|record| record["id"].as_i64().unwrap())
                    .collect();
                in_file.sort();
                let want: Vec<i64> = persons.iter().map(|&p| i64::from(p)).collect();
                assert_eq!(in_file, want, "{subset}: the file");
                assert_eq!(document["data"]["note"].as_array().unwrap().len(), notes);
            }
        }
    }
}

#[tokio::test]
async fn subsets_that_cannot_work_are_refused_before_any_read() {
    let source = fresh_db("subsetbad").await;
    source.connect().await.batch_execute(RING).await.unwrap();
    source
        .connect()
        .await
        .batch_execute(
            "CREATE TABLE tagged (code text PRIMARY KEY); \
             CREATE TABLE tagging (person_id int REFERENCES person, code text REFERENCES tagged)",
        )
        .await
        .unwrap();
    let target = fresh_db("subsetbaddst").await;
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "roots = [{ model = \"persons\", sample = 5 }]",
            "root persons is not a model of the source",
        ),
        (
            "roots = [{ model = \"person\", sample = 5 }]\nfollow = [\"note.body\"]",
            "column body of note has no foreign key",
        ),
        (
            "roots = [{ model = \"tagged\", sample = 5 }]",
            "the primary key of tagged (code) is of type text, not an integer",
        ),
        (
            "roots = [{ model = \"person\", sample = 5 }]\nfollow = [\"tagging.person_id\"]",
            "tagging references tagged (tagging.code)",
        ),
        (
            "roots = [{ model = \"person\", sample = 250 }]",
            "the sample of root person is 250",
        ),
        (
            "roots = [{ model = \"person\" }]",
            "root person selects every row",
        ),
    ];
    for (subset, expected) in cases {
        let path = write_pipeline(
            dir.path(),
            "bad.toml",
            &ring_pipeline(&source, &target, subset),
        );
        for command in [&["check", "--connect"][..], &["run"][..]] {
            let mut args = command.to_vec();
            args.push(path.to_str().unwrap());
            let output = run_cli(&args, &[], dir.path());
            let message = stderr(&output);
            assert!(!output.status.success(), "{subset}");
            assert!(message.contains(expected), "{subset}: {message}");
            assert!(
                message.contains("bad.toml:"),
                "points into the file: {message}"
            );
        }
    }
}

#[tokio::test]
async fn rows_a_filter_drops_neither_count_nor_pull_in_what_they_reference() {
    let schema = "
        CREATE TABLE author (id int PRIMARY KEY);
        CREATE TABLE post (id int PRIMARY KEY, author_id int REFERENCES author);
        CREATE TABLE comment (id int PRIMARY KEY, post_id int REFERENCES post,
                              author_id int REFERENCES author, spam boolean);";
    let source = fresh_db("subsetfilter").await;
    let client = source.connect().await;
    client.batch_execute(schema).await.unwrap();
    client
        .batch_execute(
            "INSERT INTO author VALUES (1), (2), (3), (4);
             INSERT INTO post VALUES (1, 1), (2, 4);
             INSERT INTO comment VALUES (1, 1, 2, false), (2, 1, 3, true), (3, 2, 2, false);",
        )
        .await
        .unwrap();
    let target = fresh_db("subsetfilterdst").await;
    target.connect().await.batch_execute(schema).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = ring_pipeline(
        &source,
        &target,
        "roots = [{ model = \"author\", where = [{ column = \"id\", op = \"=\", value = 1 }] }]\n\
         follow = [\"post.author_id\", \"comment.post_id\"]",
    ) + "\n[[transforms]]\ntype = \"filter\"\nmodel = \"comment\"\n\
         conditions = [{ column = \"spam\", op = \"=\", value = true }]\n";
    let path = write_pipeline(dir.path(), "filtered.toml", &text);
    let check = run_cli(
        &["check", "--connect", path.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert!(check.status.success(), "{}", stderr(&check));
    let listed = String::from_utf8_lossy(&check.stdout).into_owned();
    let output = run_cli(&["run", path.to_str().unwrap()], &[], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    // Author 1, their post and its one comment that is not spam, whose author 2 comes up; the
    // spam comment's author 3 does not.
    assert_eq!(ids(&target, "author").await, [1, 2]);
    assert_eq!(ids(&target, "post").await, [1]);
    assert_eq!(ids(&target, "comment").await, [1]);
    for (model, rows) in [("author", 2), ("post", 1), ("comment", 1)] {
        let line = line_of(&listed, model);
        assert_eq!(
            line.split_whitespace().nth(1),
            Some(rows.to_string().as_str()),
            "{line}"
        );
    }
}
