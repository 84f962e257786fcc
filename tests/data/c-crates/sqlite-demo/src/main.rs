fn main() {
    let db = rusqlite::Connection::open_in_memory().expect("open");
    let (version, answer): (String, i64) =
        db.query_row("SELECT sqlite_version(), 6 * 7", [], |r| Ok((r.get(0)?, r.get(1)?))).expect("query");
    println!("sqlite {version} says {answer}");
}
