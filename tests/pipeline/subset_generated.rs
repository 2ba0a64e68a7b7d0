//! `[subset]` on generated data: random rows of a schema with a self-reference, a foreign-key
//! cycle between two tables and a join table without a key, random roots and random `follow`
//! edges. For every case, the rows that arrive in the target (whose foreign keys the load checks)
//! equal a naive fixed point computed here in memory from the generated rows.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

use crate::subset::ids;
use crate::support::fresh_db;
use crate::{run_cli, stderr, write_pipeline};

const SCHEMA: &str = "
    CREATE TABLE a (id int PRIMARY KEY, parent_id int REFERENCES a DEFERRABLE, b_id int);
    CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a DEFERRABLE);
    ALTER TABLE a ADD FOREIGN KEY (b_id) REFERENCES b DEFERRABLE INITIALLY DEFERRED;
    CREATE TABLE link (a_id int NOT NULL REFERENCES a, b_id int NOT NULL REFERENCES b);";

/// The downward edges a case may follow.
const EDGES: [&str; 3] = ["a.parent_id", "b.a_id", "link.a_id"];

/// Generated rows and a subset over them.
#[derive(Clone, Debug)]
struct World {
    /// Per row of `a` (id = index + 1): parent, b.
    a: Vec<(Option<i32>, Option<i32>)>,
    /// Per row of `b` (id = index + 1): a.
    b: Vec<Option<i32>>,
    /// Rows of `link`: (a, b).
    link: Vec<(i32, i32)>,
    /// Ids of `a` the root selects.
    roots: BTreeSet<i32>,
    /// Which of [`EDGES`] are followed.
    follow: [bool; 3],
    /// Keys per query: small, so that sets span several queries.
    chunk_keys: usize,
}

fn world() -> impl Strategy<Value = World> {
    (1..25usize, 1..25usize).prop_flat_map(|(na, nb)| {
        let a_ref = proptest::option::of(1..=na as i32);
        let b_ref = proptest::option::of(1..=nb as i32);
        (
            proptest::collection::vec((a_ref.clone(), b_ref), na),
            proptest::collection::vec(a_ref, nb),
            proptest::collection::vec((1..=na as i32, 1..=nb as i32), 0..30),
            proptest::collection::btree_set(1..=na as i32, 1..4),
            proptest::array::uniform3(any::<bool>()),
            1..5usize,
        )
            .prop_map(|(a, b, link, roots, follow, chunk_keys)| World {
                a,
                b,
                link,
                roots,
                follow,
                chunk_keys,
            })
    })
}

impl World {
    fn insert_sql(&self) -> String {
        let value = |v: Option<i32>| v.map_or("NULL".to_owned(), |v| v.to_string());
        let mut sql = String::from("BEGIN; SET CONSTRAINTS ALL DEFERRED;");
        for (i, (parent, b)) in self.a.iter().enumerate() {
            sql += &format!(
                "INSERT INTO a VALUES ({}, {}, {});",
                i + 1,
                value(*parent),
                value(*b)
            );
        }
        for (i, a) in self.b.iter().enumerate() {
            sql += &format!("INSERT INTO b VALUES ({}, {});", i + 1, value(*a));
        }
        for (a, b) in &self.link {
            sql += &format!("INSERT INTO link VALUES ({a}, {b});");
        }
        sql + "COMMIT;"
    }

    fn subset(&self) -> String {
        let ids: Vec<String> = self.roots.iter().map(i32::to_string).collect();
        let follow: Vec<String> = EDGES
            .iter()
            .zip(self.follow)
            .filter(|(_, on)| *on)
            .map(|(edge, _)| format!("{edge:?}"))
            .collect();
        format!(
            "roots = [{{ model = \"a\", where = [{{ column = \"id\", op = \"in\", value = [{}] }}] }}]\n\
             follow = [{}]\nchunk_keys = {}",
            ids.join(", "),
            follow.join(", "),
            self.chunk_keys
        )
    }

    /// The rows the subset copies: (ids of a, ids of b, rows of link), by a naive fixed point.
    fn expected(&self) -> (BTreeSet<i32>, BTreeSet<i32>, Vec<(i32, i32)>) {
        let [parent_edge, b_edge, link_edge] = self.follow;
        // Down.
        let mut down_a = self.roots.clone();
        let mut down_b = BTreeSet::new();
        loop {
            let before = (down_a.len(), down_b.len());
            for (i, (parent, _)) in self.a.iter().enumerate() {
                if parent_edge && parent.is_some_and(|p| down_a.contains(&p)) {
                    down_a.insert(i as i32 + 1);
                }
            }
            for (i, a) in self.b.iter().enumerate() {
                if b_edge && a.is_some_and(|a| down_a.contains(&a)) {
                    down_b.insert(i as i32 + 1);
                }
            }
            if (down_a.len(), down_b.len()) == before {
                break;
            }
        }
        let links: Vec<(i32, i32)> = self
            .link
            .iter()
            .filter(|(a, _)| link_edge && down_a.contains(a))
            .copied()
            .collect();
        // Up.
        let (mut all_a, mut all_b) = (down_a, down_b);
        for (a, b) in &links {
            all_a.insert(*a);
            all_b.insert(*b);
        }
        loop {
            let before = (all_a.len(), all_b.len());
            for id in all_a.clone() {
                let (parent, b) = self.a[id as usize - 1];
                all_a.extend(parent);
                all_b.extend(b);
            }
            for id in all_b.clone() {
                all_a.extend(self.b[id as usize - 1]);
            }
            if (all_a.len(), all_b.len()) == before {
                break;
            }
        }
        (all_a, all_b, links)
    }
}

async fn check(world: World, dir: &std::path::Path) -> Result<(), String> {
    let source = fresh_db("gensrc").await;
    let client = source.connect().await;
    client.batch_execute(SCHEMA).await.unwrap();
    client.batch_execute(&world.insert_sql()).await.unwrap();
    let target = fresh_db("gendst").await;
    target.connect().await.batch_execute(SCHEMA).await.unwrap();
    let text = format!(
        "[source]\ntype = \"postgres\"\nurl = \"${{SOURCE_URL}}\"\n\n[subset]\n{}\n\n\
         [[sinks]]\ntype = \"postgres\"\nurl = \"${{TARGET_URL}}\"\nmode = \"skip\"\n",
        world.subset()
    );
    let path = write_pipeline(dir, "generated.toml", &text);
    let env = [
        ("SOURCE_URL", source.url.as_str()),
        ("TARGET_URL", target.url.as_str()),
    ];
    let output = run_cli(&["run", path.to_str().unwrap()], &env, dir);
    if !output.status.success() {
        return Err(format!("{text}\n{}", stderr(&output)));
    }
    let (want_a, want_b, mut want_link) = world.expected();
    let mut got_link: Vec<(i32, i32)> = target
        .connect()
        .await
        .query("SELECT a_id, b_id FROM link", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    got_link.sort();
    want_link.sort();
    let set = |ids: Vec<i32>| ids.into_iter().collect::<BTreeSet<i32>>();
    let got = (
        set(ids(&target, "a").await),
        set(ids(&target, "b").await),
        got_link,
    );
    if got != (want_a.clone(), want_b.clone(), want_link.clone()) {
        return Err(format!(
            "{text}\nexpected a {want_a:?}, b {want_b:?}, link {want_link:?}\n\
             got      a {:?}, b {:?}, link {:?}",
            got.0, got.1, got.2
        ));
    }
    Ok(())
}

#[test]
fn generated_subsets_copy_exactly_the_fixed_point() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 16,
        max_shrink_iters: 50,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(20261202),
        ..Config::default()
    });
    let result = runner.run(&world(), |world| {
        runtime
            .block_on(check(world, dir.path()))
            .map_err(TestCaseError::fail)
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}
