//! The saved queries: the questions auditors ask most, in SQL both engines run (the columns of
//! `table::EVENT_FIELDS` in lower case; no engine-specific functions).

/// A saved query's parameter, given by its flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// `--user`
    User,
    /// `--session`
    Session,
}

impl Param {
    pub fn flag(self) -> &'static str {
        match self {
            Param::User => "--user",
            Param::Session => "--session",
        }
    }

    fn placeholder(self) -> &'static str {
        match self {
            Param::User => ":user",
            Param::Session => ":session",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Saved {
    pub name: &'static str,
    pub question: &'static str,
    pub param: Option<Param>,
    pub sql: &'static str,
}

pub const SAVED: [Saved; 6] = [
    Saved {
        name: "failed-logins",
        question: "Who failed to log in, from where, with what client?",
        param: None,
        sql: "SELECT logtime, dbusername, remotehost, clientapplication, command, errormessage \
              FROM events WHERE category = 'AUTH_FAILURE' ORDER BY logtime, dbusername",
    },
    Saved {
        name: "ddl",
        question: "Which schema changes were made, by whom?",
        param: None,
        sql: "SELECT logtime, dbusername, databasename, command, objectname, commandtext \
              FROM events WHERE category = 'DDL' ORDER BY logtime, commandtext",
    },
    Saved {
        name: "privilege-changes",
        question: "Which grants, revokes and user or role changes were made, by whom?",
        param: None,
        sql: "SELECT logtime, dbusername, databasename, command, objectname, commandtext \
              FROM events WHERE category = 'DCL' ORDER BY logtime, commandtext",
    },
    Saved {
        name: "top-users",
        question: "Who did the most, of what kind?",
        param: None,
        sql: "SELECT dbusername, category, count(*) AS events FROM events \
              GROUP BY dbusername, category ORDER BY events DESC, dbusername, category",
    },
    Saved {
        name: "user-activity",
        question: "What did this user do (--user NAME)?",
        param: Some(Param::User),
        sql: "SELECT logtime, category, sessionid, remotehost, command, objectname, commandtext \
              FROM events WHERE dbusername = :user ORDER BY logtime, sessionid, commandtext",
    },
    Saved {
        name: "session",
        question: "What did this session do, statement by statement (--session ID)?",
        param: Some(Param::Session),
        sql: "SELECT logtime, category, dbusername, command, objectname, commandtext \
              FROM events WHERE sessionid = :session ORDER BY logtime, statementid, substatementid",
    },
];

pub fn find(name: &str) -> Option<&'static Saved> {
    SAVED.iter().find(|s| s.name == name)
}

/// A SQL string literal of `value`: quotes doubled, the standard escape both engines take.
pub fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

impl Saved {
    /// The SQL with its parameter's value; `Err` names the flag it needs.
    pub fn render(&self, user: Option<&str>, session: Option<&str>) -> Result<String, String> {
        let Some(param) = self.param else {
            return Ok(self.sql.to_owned());
        };
        let value = match param {
            Param::User => user,
            Param::Session => session,
        };
        match value {
            Some(v) => Ok(self.sql.replace(param.placeholder(), &literal(v))),
            None => Err(format!(
                "--saved {} needs {} (the value to look for)",
                self.name,
                param.flag()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_parameters_are_filled_quoted() {
        let mut names: Vec<_> = SAVED.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SAVED.len());
        let s = find("user-activity").unwrap();
        let sql = s.render(Some("o'brien"), None).unwrap();
        assert!(sql.contains("dbusername = 'o''brien'"), "{sql}");
        assert!(!sql.contains(":user"));
        assert_eq!(
            s.render(None, Some("1")).unwrap_err(),
            "--saved user-activity needs --user (the value to look for)"
        );
        assert_eq!(
            find("ddl").unwrap().render(None, None).unwrap(),
            find("ddl").unwrap().sql
        );
        assert!(find("nope").is_none());
    }

    #[test]
    fn every_saved_query_names_only_columns_of_the_table() {
        let columns: Vec<String> = super::super::table::column_names().collect();
        let keywords = [
            "select", "from", "where", "order", "by", "group", "count", "as", "desc", "and",
            "events",
        ];
        for s in SAVED {
            let sql = s.render(Some("u"), Some("1")).unwrap().to_ascii_lowercase();
            let words = sql
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '\''))
                .filter(|w| !w.is_empty() && !w.starts_with('\'') && !w.ends_with('\''));
            for w in words {
                assert!(
                    keywords.contains(&w) || columns.iter().any(|c| c == w),
                    "{}: {w} is not a column",
                    s.name
                );
            }
        }
    }
}
