use super::*;
use crate::record::Repr;

fn table(name: &str, refs: &[&str]) -> TableSchema {
    TableSchema {
        model: name.into(),
        schema: "public".into(),
        table: name.into(),
        section: Section::Data,
        columns: vec![],
        primary_key: vec![],
        foreign_keys: refs
            .iter()
            .map(|r| ForeignKey {
                name: format!("{name}_{r}_fkey"),
                columns: vec![],
                ref_schema: "public".into(),
                ref_table: (*r).into(),
                ref_columns: vec![],
            })
            .collect(),
        unique_keys: vec![],
        sequences: vec![],
        partitioned: false,
    }
}

fn names(tables: &[TableSchema]) -> Vec<&str> {
    tables.iter().map(|t| t.table.as_str()).collect()
}

#[test]
fn parents_come_first() {
    let tables = vec![
        table("audit", &[]),
        table("comments", &["posts", "users", "comments"]),
        table("posts", &["users"]),
        table("users", &[]),
    ];
    assert_eq!(
        names(&dependency_order(tables)),
        ["audit", "users", "posts", "comments"]
    );
}

#[test]
fn cycles_are_broken_by_input_order() {
    let tables = vec![table("a", &["b"]), table("b", &["a"]), table("c", &["a"])];
    assert_eq!(names(&dependency_order(tables)), ["a", "b", "c"]);
}

#[test]
fn card_tags_follow_card_and_tag() {
    let list = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    assert!(model_selected("card_tags", None, &[]));
    assert!(model_selected(
        "card_tags",
        Some(&list(&["User", "Card", "Tag"])),
        &[]
    ));
    assert!(!model_selected(
        "card_tags",
        Some(&list(&["User", "Card"])),
        &[]
    ));
    assert!(!model_selected("card_tags", None, &list(&["Tag"])));
    assert!(!model_selected("card_tags", None, &list(&["card_tags"])));
    assert!(model_selected(
        "card_tags",
        Some(&list(&["card_tags"])),
        &[]
    ));
    assert!(!model_selected("User", Some(&list(&["Tag"])), &[]));
    assert!(!model_selected("User", None, &list(&["User"])));
}

#[test]
fn scalar_types_map_to_reprs() {
    assert_eq!(scalar_repr(23), Some(Repr::Int4));
    assert_eq!(scalar_repr(3802), Some(Repr::Json));
    assert_eq!(scalar_repr(2950), None); // uuid: text output
}
