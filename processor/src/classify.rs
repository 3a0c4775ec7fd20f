//! Event -> normalized category, per engine. Pure and table-tested; the README carries the same
//! table (keep them in step).
//!
//! Each engine describes activity differently (see `../shared/reference/das-format.md` §2):
//! PostgreSQL (pgaudit) says what a statement is in `class`; MySQL only says MAIN or AUX, so the
//! statement text or the AUX command decides; Oracle and SQL Server name the action in `command`.

use std::fmt;

use crate::event::EventFields;

/// The normalized kind of an activity event. Also the name of its S3 folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Schema changes: CREATE, ALTER, DROP, TRUNCATE, RENAME, COMMENT.
    Ddl,
    /// Data changes: INSERT, UPDATE, DELETE, MERGE, COPY, LOAD DATA.
    Dml,
    /// Reads: SELECT, SHOW, EXPLAIN.
    Dql,
    /// Privileges, users and roles: GRANT, REVOKE, CREATE USER/ROLE.
    Dcl,
    /// Transaction control: BEGIN, COMMIT, ROLLBACK, SAVEPOINT.
    Tcl,
    Connect,
    Disconnect,
    /// A login that was refused.
    AuthFailure,
    /// A statement that failed.
    Error,
    /// Everything else (SET, USE, VACUUM, EXECUTE, unknown engines ...): kept, never lost.
    Other,
}

impl Category {
    pub const ALL: [Category; 10] = [
        Category::Ddl,
        Category::Dml,
        Category::Dql,
        Category::Dcl,
        Category::Tcl,
        Category::Connect,
        Category::Disconnect,
        Category::AuthFailure,
        Category::Error,
        Category::Other,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Category::Ddl => "DDL",
            Category::Dml => "DML",
            Category::Dql => "DQL",
            Category::Dcl => "DCL",
            Category::Tcl => "TCL",
            Category::Connect => "CONNECT",
            Category::Disconnect => "DISCONNECT",
            Category::AuthFailure => "AUTH_FAILURE",
            Category::Error => "ERROR",
            Category::Other => "OTHER",
        }
    }

    /// Parses a category name, ignoring case and surrounding spaces.
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim();
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(name))
    }

    pub(crate) const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The engine that produced an event, from its `serverType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    PostgreSql,
    MySql,
    Oracle,
    SqlServer,
    Unknown,
}

impl Engine {
    pub fn from_server_type(server_type: Option<&str>) -> Self {
        let Some(server) = server_type else {
            return Engine::Unknown;
        };
        let contains = |needle: &str| {
            server
                .as_bytes()
                .windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
        };
        if contains("postgres") {
            Engine::PostgreSql
        } else if contains("mysql") {
            Engine::MySql
        } else if contains("oracle") {
            Engine::Oracle
        } else if contains("sqlserver") || contains("sql server") {
            Engine::SqlServer
        } else {
            Engine::Unknown
        }
    }
}

/// The category of one activity event (heartbeats are dropped before this).
pub fn classify(event: &EventFields<'_>) -> Category {
    let command = event.command.as_deref().unwrap_or("").trim();
    let class = event.class.as_deref().unwrap_or("").trim();
    match Engine::from_server_type(event.server_type.as_deref()) {
        Engine::PostgreSql => postgres(class, command),
        Engine::MySql => mysql(class, command, event),
        Engine::Oracle => oracle(command, event),
        Engine::SqlServer => sql_server(command),
        // An unknown engine: the command, then the statement, by their leading keyword.
        Engine::Unknown => by_command_name(command)
            .or_else(|| statement(event.command_text.as_deref().unwrap_or("")))
            .unwrap_or(Category::Other),
    }
}

fn postgres(class: &str, command: &str) -> Category {
    if let Some(category) = session_command(command) {
        return category;
    }
    let eq = |s: &str| class.eq_ignore_ascii_case(s);
    if eq("DDL") {
        Category::Ddl
    } else if eq("WRITE") {
        Category::Dml
    } else if eq("READ") {
        Category::Dql
    } else if eq("ROLE") {
        Category::Dcl
    } else if eq("CONNECT") {
        Category::Connect
    } else {
        // MISC, FUNCTION, ALL, NONE: the command (statement name) decides; BEGIN/COMMIT are MISC.
        statement(command).unwrap_or(Category::Other)
    }
}

/// The PostgreSQL and generic session commands.
fn session_command(command: &str) -> Option<Category> {
    let eq = |s: &str| command.eq_ignore_ascii_case(s);
    if eq("CONNECT") {
        Some(Category::Connect)
    } else if eq("DISCONNECT") {
        Some(Category::Disconnect)
    } else if eq("AUTH FAILURE") || eq("AUTH_FAILURE") {
        Some(Category::AuthFailure)
    } else if eq("ERROR") {
        Some(Category::Error)
    } else {
        None
    }
}

fn mysql(class: &str, command: &str, event: &EventFields<'_>) -> Category {
    let eq = |s: &str| command.eq_ignore_ascii_case(s);
    if class.eq_ignore_ascii_case("AUX") {
        // AUX events name an object a statement touched and what it did to it.
        return if eq("READ") {
            Category::Dql
        } else if eq("WRITE") || eq("INSERT") || eq("UPDATE") || eq("DELETE") {
            Category::Dml
        } else if eq("CREATE") || eq("DROP") || eq("ALTER") || eq("RENAME") || eq("TRUNCATE") {
            Category::Ddl
        } else if eq("GRANT") || eq("REVOKE") {
            Category::Dcl
        } else {
            Category::Other
        };
    }
    if eq("CONNECT") || eq("CHANGEUSER") {
        Category::Connect
    } else if eq("DISCONNECT") {
        Category::Disconnect
    } else if eq("FAILED_CONNECT") {
        Category::AuthFailure
    } else if eq("QUERY") {
        // MySQL reports a failed statement on its MAIN event: exitCode is the error number.
        if event.failed() {
            Category::Error
        } else {
            statement(event.command_text.as_deref().unwrap_or("")).unwrap_or(Category::Other)
        }
    } else {
        Category::Other
    }
}

fn oracle(command: &str, event: &EventFields<'_>) -> Category {
    let eq = |s: &str| command.eq_ignore_ascii_case(s);
    if eq("LOGON") {
        // A refused logon is audited as LOGON with the Oracle error in RETURN_CODE (exitCode).
        if event.failed() {
            Category::AuthFailure
        } else {
            Category::Connect
        }
    } else if eq("LOGOFF") || eq("LOGOFF BY CLEANUP") {
        Category::Disconnect
    } else {
        by_command_name(command).unwrap_or(Category::Other)
    }
}

fn sql_server(command: &str) -> Category {
    let eq = |s: &str| command.eq_ignore_ascii_case(s);
    if eq("LOGIN SUCCEEDED") || eq("LOGIN") {
        Category::Connect
    } else if eq("LOGOUT") {
        Category::Disconnect
    } else if eq("LOGIN FAILED") {
        Category::AuthFailure
    } else {
        by_command_name(command).unwrap_or(Category::Other)
    }
}

/// An action name (Oracle, SQL Server, PostgreSQL command): "CREATE TABLE", "GRANT OBJECT",
/// "SELECT". Same vocabulary as statements, plus the action names that are not SQL.
fn by_command_name(command: &str) -> Option<Category> {
    session_command(command).or_else(|| statement(command))
}

/// A statement (or statement name) by its leading keyword(s). `None` when it has no keyword.
pub fn statement(text: &str) -> Option<Category> {
    let mut words = Keywords::new(text);
    let first = words.next()?;
    let is = |w: &str, k: &str| w.eq_ignore_ascii_case(k);
    let category = match first.to_ascii_uppercase().as_str() {
        "CREATE" | "ALTER" | "DROP" | "RENAME" => match words.next() {
            Some(w) if is(w, "USER") || is(w, "ROLE") || is(w, "LOGIN") => Category::Dcl,
            _ => Category::Ddl,
        },
        "TRUNCATE" | "COMMENT" | "AUDIT" | "NOAUDIT" | "ANALYZE" | "REINDEX" | "CLUSTER"
        | "REFRESH" | "IMPORT" | "PURGE" | "FLASHBACK" => Category::Ddl,
        "INSERT" | "UPDATE" | "DELETE" | "REPLACE" | "MERGE" | "UPSERT" | "COPY" | "LOAD"
        | "CALL" => Category::Dml,
        "SELECT" | "WITH" | "SHOW" | "DESCRIBE" | "DESC" | "EXPLAIN" | "TABLE" | "VALUES"
        | "HANDLER" | "FETCH" => Category::Dql,
        "GRANT" | "REVOKE" | "DENY" => Category::Dcl,
        "BEGIN" | "START" | "COMMIT" | "ROLLBACK" | "SAVEPOINT" | "RELEASE" | "XA" | "END"
        | "ABORT" | "PREPARE" => {
            // PREPARE TRANSACTION is two-phase commit; PREPARE name AS ... is not.
            if is(first, "PREPARE") && !words.next().is_some_and(|w| is(w, "TRANSACTION")) {
                Category::Other
            } else {
                Category::Tcl
            }
        }
        "SET" => match words.next() {
            Some(w) if is(w, "TRANSACTION") || is(w, "AUTOCOMMIT") => Category::Tcl,
            Some(w) if is(w, "PASSWORD") || is(w, "ROLE") => Category::Dcl,
            _ => Category::Other,
        },
        _ => Category::Other,
    };
    Some(category)
}

/// Leading keywords of a statement, skipping white space, comments and opening parentheses.
struct Keywords<'a> {
    rest: &'a str,
}

impl<'a> Keywords<'a> {
    fn new(text: &'a str) -> Self {
        Self { rest: text }
    }

    fn skip_noise(&mut self) {
        loop {
            let trimmed = self
                .rest
                .trim_start_matches(|c: char| c.is_whitespace() || c == '(');
            if let Some(after) = trimmed.strip_prefix("/*") {
                // An unterminated comment swallows the rest, as the server would.
                self.rest = after.find("*/").map_or("", |end| &after[end + 2..]);
            } else if trimmed.starts_with("--") || trimmed.starts_with('#') {
                self.rest = trimmed.find('\n').map_or("", |end| &trimmed[end + 1..]);
            } else {
                self.rest = trimmed;
                return;
            }
        }
    }
}

impl<'a> Iterator for Keywords<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        self.skip_noise();
        let end = self
            .rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.rest.len());
        if end == 0 {
            return None;
        }
        let (word, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(server: &str, class: &str, command: &str, text: &str, exit: &str) -> Category {
        let json = serde_json::json!({
            "type": "record", "serverType": server, "class": class, "command": command,
            "commandText": text, "exitCode": exit,
        })
        .to_string();
        let fields = EventFields::parse(&json).unwrap();
        classify(&fields)
    }

    #[test]
    fn postgres_by_class_then_command() {
        use Category::*;
        let table = [
            ("DDL", "CREATE TABLE", Ddl),
            ("WRITE", "INSERT", Dml),
            ("READ", "SELECT", Dql),
            ("ROLE", "GRANT", Dcl),
            ("MISC", "BEGIN", Tcl),
            ("MISC", "COMMIT", Tcl),
            ("MISC", "SET", Other),
            ("MISC", "VACUUM", Other),
            ("FUNCTION", "DO", Other),
            ("", "CONNECT", Connect),
            ("", "DISCONNECT", Disconnect),
            ("", "AUTH FAILURE", AuthFailure),
            ("", "ERROR", Error),
            ("NONE", "", Other),
        ];
        for (class, command, expected) in table {
            assert_eq!(
                event("PostgreSQL", class, command, "", "0"),
                expected,
                "{class}/{command}"
            );
        }
    }

    #[test]
    fn mysql_main_by_statement_and_aux_by_command() {
        use Category::*;
        let table = [
            ("MAIN", "QUERY", "CREATE TABLE t (i int)", "0", Ddl),
            (
                "MAIN",
                "QUERY",
                "  /* hint */ insert into t values (1)",
                "0",
                Dml,
            ),
            ("MAIN", "QUERY", "-- c\nUPDATE t SET i = 2", "0", Dml),
            ("MAIN", "QUERY", "(select 1)", "0", Dql),
            ("MAIN", "QUERY", "show tables", "0", Dql),
            ("MAIN", "QUERY", "CREATE USER bob", "0", Dcl),
            ("MAIN", "QUERY", "grant select on t to bob", "0", Dcl),
            ("MAIN", "QUERY", "START TRANSACTION", "0", Tcl),
            ("MAIN", "QUERY", "set autocommit=0", "0", Tcl),
            ("MAIN", "QUERY", "use app", "0", Other),
            ("MAIN", "QUERY", "select * from missing", "1146", Error),
            ("MAIN", "QUERY", "", "0", Other),
            ("MAIN", "CONNECT", "", "0", Connect),
            ("MAIN", "CHANGEUSER", "", "0", Connect),
            ("MAIN", "DISCONNECT", "", "0", Disconnect),
            ("MAIN", "FAILED_CONNECT", "", "1045", AuthFailure),
            ("AUX", "READ", "", "0", Dql),
            ("AUX", "WRITE", "", "0", Dml),
            ("AUX", "DELETE", "", "0", Dml),
            ("AUX", "CREATE", "", "0", Ddl),
            ("AUX", "DROP", "", "0", Ddl),
            ("AUX", "SOMETHING_NEW", "", "0", Other),
        ];
        for (class, command, text, exit, expected) in table {
            assert_eq!(
                event("MySQL", class, command, text, exit),
                expected,
                "{class}/{command}/{text}"
            );
        }
    }

    #[test]
    fn oracle_and_sql_server_by_action() {
        use Category::*;
        let oracle = [
            ("LOGON", "0", Connect),
            ("LOGON", "1017", AuthFailure),
            ("LOGOFF", "0", Disconnect),
            ("LOGOFF BY CLEANUP", "0", Disconnect),
            ("ALTER DATABASE", "0", Ddl),
            ("CREATE TABLE", "0", Ddl),
            ("CREATE USER", "0", Dcl),
            ("GRANT OBJECT", "0", Dcl),
            ("SELECT", "0", Dql),
            ("INSERT", "0", Dml),
            ("COMMIT", "0", Tcl),
            ("EXECUTE", "0", Other),
        ];
        for (command, exit, expected) in oracle {
            assert_eq!(
                event("ORACLE", "Standard", command, "", exit),
                expected,
                "{command}"
            );
        }
        let sql_server = [
            ("LOGIN SUCCEEDED", Connect),
            ("LOGOUT", Disconnect),
            ("LOGIN FAILED", AuthFailure),
            ("SELECT", Dql),
            ("UPDATE", Dml),
            ("CREATE", Ddl),
            ("GRANT", Dcl),
            ("DENY", Dcl),
            ("BACKUP", Other),
        ];
        for (command, expected) in sql_server {
            assert_eq!(
                event("SQLSERVER", "TABLE", command, "", "1"),
                expected,
                "{command}"
            );
        }
    }

    #[test]
    fn unknown_engine_falls_back_to_command_then_text() {
        assert_eq!(event("", "", "", "DROP TABLE x", "0"), Category::Ddl);
        assert_eq!(
            event("CockroachDB", "", "CONNECT", "", "0"),
            Category::Connect
        );
        assert_eq!(event("", "", "", "", "0"), Category::Other);
    }

    #[test]
    fn names_round_trip() {
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Some(c));
            assert_eq!(
                Category::parse(&format!(" {} ", c.as_str().to_lowercase())),
                Some(c)
            );
        }
        assert_eq!(Category::parse("READS"), None);
    }

    #[test]
    fn keywords_skip_comments_and_parentheses() {
        let words: Vec<_> = Keywords::new("/* a */ ((-- b\n# c\n select_x 1").collect();
        assert_eq!(words, ["select_x", "1"]);
        assert_eq!(Keywords::new("/* never closed select").next(), None);
    }
}
