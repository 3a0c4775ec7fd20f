//! Secrets out of statement text, before anything is stored, shown or alerted on.
//!
//! Engines log statements verbatim: `ALTER USER app PASSWORD 'hunter2'` reaches the activity stream
//! as written. Every event's `commandText` is masked here, always, for the values that are
//! secrets by their position in the statement (`Mode::Passwords`), and optionally for every
//! string and numeric literal (`Mode::Literals`, for PII-bearing workloads).
//!
//! The text is lexed the way its engine lexes it (`Dialect`): which quotes make strings or
//! identifiers, whether a backslash escapes, dollar quoting, Oracle's `q'[...]'`, nested comments,
//! MySQL's `#` and executable `/*! */` comments. Getting that wrong is how a masker leaks: an
//! apostrophe in a comment taken for a string would swallow the real password. Where the lexer is
//! unsure it reads code, not comment, and an unterminated string or comment runs to the end, as
//! the server reads it.
//!
//! What is a secret (`Mode::Passwords`), per engine's grammar:
//! - the value after a word naming a password: `PASSWORD`, `*PASSWORD` (`OLD_PASSWORD`,
//!   `MASTER_PASSWORD`, `@rmtpassword`), `*PASSWD`, `*PWD`, `SECRET`: `PASSWORD 'x'`,
//!   `PASSWORD = 'x'`, `PASSWORD = 0x...` (SQL Server hashes), `PASSWORD('x')`,
//!   `SET PASSWORD FOR u@h = 'x'`, `OPTIONS (password 'x')`; a function call as the value has
//!   every literal inside it masked;
//! - `IDENTIFIED BY x`, `IDENTIFIED BY VALUES 'x'`, `IDENTIFIED WITH plugin BY|AS 'x'` (MySQL,
//!   Oracle; Oracle's unquoted and double-quoted passwords included), and the `REPLACE 'old'`
//!   that may follow in the same statement;
//! - a string holding a connection string's password (`password=`, `pwd=`) or a URL with
//!   credentials (`scheme://user:secret@host`): the whole string;
//! - the password arguments of stored procedures that take one by position (`PROCEDURES`).
//!
//! A value given as a bind parameter (`$1`, `?`, `:name`) is in `paramList`, which the caller
//! then masks whole (`Redacted::params`). Not covered: a password first put in a variable
//! (`SET @p = 'x'; ... IDENTIFIED BY @p`), and unquoted values where the grammar wants a quoted
//! one (a syntax error the engine refuses).

use std::cell::RefCell;
use std::sync::OnceLock;

use memchr::memmem::Finder;

use crate::classify::Engine;

/// How much of a statement's text is masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Secrets only (always on).
    #[default]
    Passwords,
    /// Secrets, and every string and numeric literal (each becomes `?`).
    Literals,
}

impl Mode {
    /// `passwords` or `literals`, ignoring case and surrounding spaces.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if value.eq_ignore_ascii_case("passwords") {
            Some(Mode::Passwords)
        } else if value.eq_ignore_ascii_case("literals") {
            Some(Mode::Literals)
        } else {
            None
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Passwords => "passwords",
            Mode::Literals => "literals",
        }
    }
}

/// The kinds listed in an event's `redacted` field.
pub const KIND_PASSWORD: &str = "password";
pub const KIND_LITERAL: &str = "literal";

/// What replaces a secret (a masked string keeps its quotes, so the text still reads as SQL).
pub const SECRET_MASK: &str = "***";
/// What replaces a literal in `Mode::Literals`.
pub const LITERAL_MASK: &str = "?";

/// A statement with something masked.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Redacted {
    /// The statement text with the values masked.
    pub text: String,
    /// A secret was masked.
    pub password: bool,
    /// A literal was masked (`Mode::Literals`).
    pub literal: bool,
    /// A secret was given as a bind parameter: the event's `paramList` must be masked.
    pub params: bool,
    /// The masked values as written, to scrub from the event's error message (engines quote the
    /// text near a syntax error). Never logged.
    pub values: Vec<String>,
}

impl Redacted {
    /// The `redacted` field's list.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds = Vec::with_capacity(2);
        if self.password || self.params {
            kinds.push(KIND_PASSWORD);
        }
        if self.literal {
            kinds.push(KIND_LITERAL);
        }
        kinds
    }
}

/// Masks `text` for `engine`. `None`: nothing to mask (the common case, found without lexing
/// when no word that can introduce a secret occurs).
pub fn redact(text: &str, engine: Engine, mode: Mode) -> Option<Redacted> {
    if mode == Mode::Passwords && !may_hold_secret(text.as_bytes()) {
        return None;
    }
    let bytes = text.as_bytes();
    let dialect = Dialect::of(engine);
    let tokens = lex(bytes, &dialect);
    let mut masks = Masks::default();
    find_secrets(bytes, &tokens, &mut masks);
    if mode == Mode::Literals {
        for t in &tokens {
            if matches!(t.kind, Kind::Str | Kind::Number) {
                masks.spans.push((t.start, t.end, Span::Literal));
            }
        }
    }
    if masks.spans.is_empty() && !masks.params {
        return None;
    }
    Some(apply(text, masks))
}

/// The words that can introduce a secret (any case).
const TRIGGERS: [&str; 9] = [
    "passw",
    "pwd",
    "secret",
    "identified",
    "sp_addlogin",
    "approle",
    "linkedsrvlogin",
    "rds_set_external",
    "://",
];

/// Cheap case-insensitive search for the words that can introduce a secret: most statements
/// have none and are never lexed. A lower-cased copy is searched with `memchr`'s SIMD substring
/// search, once per word: three times faster than one case-insensitive automaton
/// (`aho-corasick`, measured on the benchmark's statements).
fn may_hold_secret(text: &[u8]) -> bool {
    static FINDERS: OnceLock<Vec<Finder<'static>>> = OnceLock::new();
    thread_local! {
        static LOWER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    let finders =
        FINDERS.get_or_init(|| TRIGGERS.iter().map(|t| Finder::new(t.as_bytes())).collect());
    LOWER.with(|lower| {
        let Ok(mut lower) = lower.try_borrow_mut() else {
            return true; // not reached (no re-entry); were it, the statement is lexed
        };
        lower.clear();
        lower.extend(text.iter().map(u8::to_ascii_lowercase));
        finders.iter().any(|f| f.find(&lower).is_some())
    })
}

/// How an engine lexes strings, identifiers and comments.
#[derive(Debug, Clone, Copy, Default)]
struct Dialect {
    /// MySQL: `\` escapes in strings, `"..."` is a string, `` `...` `` an identifier, `#` and
    /// `-- ` (dash dash space) comments, `/*! ... */` is code.
    mysql: bool,
    /// PostgreSQL: `$tag$...$tag$`, `E'...'` with escapes, `$1` parameters, nested comments.
    postgres: bool,
    /// Oracle: `q'[...]'`, `:name` parameters.
    oracle: bool,
    /// SQL Server: `[...]` identifiers, nested comments.
    sql_server: bool,
}

impl Dialect {
    fn of(engine: Engine) -> Self {
        let mut d = Dialect::default();
        match engine {
            Engine::MySql => d.mysql = true,
            Engine::PostgreSql => d.postgres = true,
            Engine::Oracle => d.oracle = true,
            Engine::SqlServer => d.sql_server = true,
            // Standard SQL: '' strings, "" identifiers, -- and /* */ comments.
            Engine::Unknown => {}
        }
        d
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A keyword or identifier (also `@variable`).
    Word,
    /// A quoted identifier.
    Quoted,
    /// A string literal, prefix and quotes included.
    Str,
    Number,
    /// A bind parameter: `$1`, `?`, `:name`.
    Param,
    Punct(u8),
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

fn is_word_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'#' || b >= 0x80
}

/// The end of a string opened by `quote` at `open` (a doubled quote stands for one; with
/// `backslash`, `\` escapes the next byte). Unterminated: the end of the text.
fn quoted_end(text: &[u8], open: usize, quote: u8, backslash: bool) -> usize {
    let mut i = open + 1;
    while i < text.len() {
        let b = text[i];
        if backslash && b == b'\\' {
            i += 2;
        } else if b == quote {
            if text.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    text.len()
}

/// The end of a block comment opened at `open` (`/*`).
fn comment_end(text: &[u8], open: usize, nested: bool) -> usize {
    let mut depth = 1;
    let mut i = open + 2;
    while i + 1 < text.len() {
        if text[i] == b'*' && text[i + 1] == b'/' {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else if nested && text[i] == b'/' && text[i + 1] == b'*' {
            depth += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    text.len()
}

/// PostgreSQL dollar quoting: at `open` a `$tag$` (tag empty or an identifier not starting with
/// a digit) gives the end of the string it opens.
fn dollar_end(text: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    if text.get(i).is_some_and(|b| b.is_ascii_digit()) {
        return None;
    }
    while i < text.len() && text[i] != b'$' {
        if !(text[i].is_ascii_alphanumeric() || text[i] == b'_' || text[i] >= 0x80) {
            return None;
        }
        i += 1;
    }
    if i >= text.len() {
        return None;
    }
    let tag = &text[open..=i];
    let body = i + 1;
    let end = text[body..]
        .windows(tag.len())
        .position(|w| w == tag)
        .map_or(text.len(), |p| body + p + tag.len());
    Some(end)
}

/// Oracle's alternative quoting `q'<delim>...<close>'`, with `quote` at the `'`.
fn q_quote_end(text: &[u8], quote: usize) -> usize {
    let Some(&open) = text.get(quote + 1) else {
        return text.len();
    };
    let close = match open {
        b'[' => b']',
        b'{' => b'}',
        b'<' => b'>',
        b'(' => b')',
        other => other,
    };
    let mut i = quote + 2;
    while i + 1 < text.len() {
        if text[i] == close && text[i + 1] == b'\'' {
            return i + 2;
        }
        i += 1;
    }
    text.len()
}

/// The tokens of `text`, without white space and comments.
fn lex(text: &[u8], d: &Dialect) -> Vec<Token> {
    let mut tokens = Vec::with_capacity(text.len() / 4);
    // MySQL executable comments (`/*!80000 ... */`) whose `*/` is still to come.
    let mut open_executable = 0usize;
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        let next = text.get(i + 1).copied();
        let start = i;
        let token = |kind, end| Token { kind, start, end };
        let t = match b {
            _ if b.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'-' if next == Some(b'-')
                && (!d.mysql
                    || text
                        .get(i + 2)
                        .is_none_or(|c| c.is_ascii_whitespace() || c.is_ascii_control())) =>
            {
                i = line_end(text, i);
                continue;
            }
            b'#' if d.mysql => {
                i = line_end(text, i);
                continue;
            }
            b'/' if next == Some(b'*') => {
                if d.mysql && text.get(i + 2) == Some(&b'!') {
                    // Code for servers of at least the version that follows.
                    i += 3;
                    while i < text.len() && text[i].is_ascii_digit() {
                        i += 1;
                    }
                    open_executable += 1;
                } else {
                    i = comment_end(text, i, d.postgres || d.sql_server);
                }
                continue;
            }
            b'*' if next == Some(b'/') && open_executable > 0 => {
                open_executable -= 1;
                i += 2;
                continue;
            }
            b'\'' => token(Kind::Str, quoted_end(text, i, b'\'', d.mysql)),
            b'"' if d.mysql => token(Kind::Str, quoted_end(text, i, b'"', true)),
            b'"' => token(Kind::Quoted, quoted_end(text, i, b'"', false)),
            b'`' if d.mysql => token(Kind::Quoted, quoted_end(text, i, b'`', false)),
            b'[' if d.sql_server => token(Kind::Quoted, quoted_end(text, i, b']', false)),
            b'$' if d.postgres && next.is_some_and(|c| c.is_ascii_digit()) => {
                let mut end = i + 1;
                while end < text.len() && text[end].is_ascii_digit() {
                    end += 1;
                }
                token(Kind::Param, end)
            }
            b'$' if d.postgres => match dollar_end(text, i) {
                Some(end) => token(Kind::Str, end),
                None => token(Kind::Punct(b), i + 1),
            },
            b'?' => token(Kind::Param, i + 1),
            b':' if d.oracle && next.is_some_and(is_word_byte) => {
                token(Kind::Param, word_end(text, i + 1))
            }
            b'@' if next.is_some_and(|c| is_word_start(c) || c == b'@') => {
                let mut end = i + 1;
                while end < text.len() && text[end] == b'@' {
                    end += 1;
                }
                token(Kind::Word, word_end(text, end))
            }
            b'0'..=b'9' => token(Kind::Number, number_end(text, i)),
            b'.' if next.is_some_and(|c| c.is_ascii_digit()) => {
                token(Kind::Number, number_end(text, i))
            }
            _ if is_word_start(b) => {
                let end = word_end(text, i);
                let word = &text[i..end];
                let eq = |w: &[u8]| word.eq_ignore_ascii_case(w);
                match text.get(end) {
                    // Prefixed strings: N'...' (national), X'...' and B'...' (binary), E'...'
                    // (PostgreSQL escapes), q'[...]' and nq'[...]' (Oracle).
                    Some(b'\'') if d.oracle && (eq(b"q") || eq(b"nq")) => {
                        token(Kind::Str, q_quote_end(text, end))
                    }
                    Some(b'\'') if d.postgres && eq(b"e") => {
                        token(Kind::Str, quoted_end(text, end, b'\'', true))
                    }
                    Some(b'\'') if eq(b"n") || eq(b"x") || eq(b"b") => {
                        token(Kind::Str, quoted_end(text, end, b'\'', d.mysql))
                    }
                    _ => token(Kind::Word, end),
                }
            }
            _ => token(Kind::Punct(b), i + 1),
        };
        i = t.end.max(i + 1);
        tokens.push(t);
    }
    tokens
}

fn line_end(text: &[u8], from: usize) -> usize {
    text[from..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(text.len(), |p| from + p + 1)
}

fn word_end(text: &[u8], from: usize) -> usize {
    let mut end = from;
    while end < text.len() && is_word_byte(text[end]) {
        end += 1;
    }
    end
}

/// A number: digits, a fraction, an exponent, or `0x...`; trailing letters (`1e`, `10M`) belong
/// to it, so a number never splits a word.
fn number_end(text: &[u8], from: usize) -> usize {
    let mut end = from;
    while end < text.len() {
        let c = text[end];
        let sign_after_exponent = (c == b'+' || c == b'-')
            && end > from
            && text[end - 1].eq_ignore_ascii_case(&b'e')
            && !text[from..end]
                .iter()
                .any(|c| c.eq_ignore_ascii_case(&b'x'));
        if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || sign_after_exponent {
            end += 1;
        } else {
            break;
        }
    }
    end
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Span {
    Secret,
    Literal,
}

#[derive(Debug, Default)]
struct Masks {
    spans: Vec<(usize, usize, Span)>,
    params: bool,
}

/// Stored procedures that take a password by position (1-based) or by parameter name.
const PROCEDURES: [(&str, &[usize], &[&str]); 12] = [
    // SQL Server
    ("sp_addlogin", &[2], &["@passwd"]),
    ("sp_password", &[1, 2], &["@old", "@new"]),
    ("sp_setapprole", &[2], &["@password"]),
    ("sp_addapprole", &[2], &["@password"]),
    ("sp_approlepassword", &[2], &["@newpwd"]),
    ("sp_addlinkedsrvlogin", &[5], &["@rmtpassword"]),
    // RDS for MySQL / Aurora MySQL replication from an external source.
    ("rds_set_external_master", &[4], &[]),
    ("rds_set_external_source", &[4], &[]),
    ("rds_set_external_master_with_delay", &[4], &[]),
    ("rds_set_external_source_with_delay", &[4], &[]),
    ("rds_set_external_master_with_auto_position", &[4], &[]),
    ("rds_set_external_source_with_auto_position", &[4], &[]),
];

/// A word that names a password or secret (a leading `@` of a variable ignored).
fn names_secret(word: &[u8]) -> bool {
    let word = {
        let mut w = word;
        while let [b'@', rest @ ..] = w {
            w = rest;
        }
        w
    };
    let ends =
        |s: &[u8]| word.len() >= s.len() && word[word.len() - s.len()..].eq_ignore_ascii_case(s);
    ends(b"password") || ends(b"passwd") || ends(b"pwd") || word.eq_ignore_ascii_case(b"secret")
}

fn find_secrets(text: &[u8], tokens: &[Token], masks: &mut Masks) {
    let word = |i: usize| -> Option<&[u8]> {
        tokens
            .get(i)
            .filter(|t| t.kind == Kind::Word)
            .map(|t| &text[t.start..t.end])
    };
    let is_word = |i: usize, w: &str| word(i).is_some_and(|x| x.eq_ignore_ascii_case(w.as_bytes()));
    let punct = |i: usize, p: u8| tokens.get(i).is_some_and(|t| t.kind == Kind::Punct(p));
    // `REPLACE 'old'` after a password in the same statement is the old password.
    let mut after_password = false;
    for (i, t) in tokens.iter().enumerate() {
        match t.kind {
            Kind::Punct(b';') => after_password = false,
            Kind::Str if holds_credentials(&text[t.start..t.end]) => {
                masks.spans.push((t.start, t.end, Span::Secret));
            }
            Kind::Word => {
                let w = &text[t.start..t.end];
                if let Some((_, positions, names)) = PROCEDURES
                    .iter()
                    .find(|(p, _, _)| w.eq_ignore_ascii_case(p.as_bytes()))
                {
                    mask_arguments(text, tokens, i + 1, positions, names, masks);
                } else if names_secret(w) {
                    let mut j = i + 1;
                    if is_word(j, "FOR") {
                        // SET PASSWORD FOR user@host = 'x'
                        while j < tokens.len() && !punct(j, b'=') && !punct(j, b';') {
                            j += 1;
                        }
                    }
                    if punct(j, b':') && punct(j + 1, b'=') {
                        j += 1;
                    }
                    if punct(j, b'(') {
                        after_password |= mask_group(tokens, j, masks);
                        continue;
                    }
                    if punct(j, b'=') {
                        j += 1;
                    }
                    after_password |= mask_value(text, tokens, j, false, masks);
                } else if w.eq_ignore_ascii_case(b"IDENTIFIED") {
                    if is_word(i + 1, "BY") {
                        let j = i + 2;
                        if is_word(j, "VALUES") {
                            after_password |= mask_value(text, tokens, j + 1, true, masks);
                        } else if is_word(j, "RANDOM") || is_word(j, "PASSWORD") {
                            // RANDOM PASSWORD: none given; PASSWORD 'hash': the rule above.
                        } else {
                            after_password |= mask_value(text, tokens, j, true, masks);
                        }
                    } else if is_word(i + 1, "WITH") {
                        // IDENTIFIED WITH plugin [BY 'x' | AS 'hash']
                        let j = i + 3;
                        if is_word(j, "BY") || is_word(j, "AS") {
                            after_password |= mask_value(text, tokens, j + 1, true, masks);
                        }
                    }
                } else if w.eq_ignore_ascii_case(b"REPLACE")
                    && after_password
                    && !punct(i + 1, b'(')
                {
                    mask_value(text, tokens, i + 1, true, masks);
                }
            }
            Kind::Quoted => {
                // [dbo].[sp_addlogin]
                let inner = &text[t.start + 1..t.end.saturating_sub(1).max(t.start + 1)];
                if let Some((_, positions, names)) = PROCEDURES
                    .iter()
                    .find(|(p, _, _)| inner.eq_ignore_ascii_case(p.as_bytes()))
                {
                    mask_arguments(text, tokens, i + 1, positions, names, masks);
                }
            }
            _ => {}
        }
    }
}

/// Masks the value at `i`: a literal, or every literal of a function call; with `bare`, also an
/// identifier (Oracle's `IDENTIFIED BY pw`). A bind parameter marks the parameters. True when
/// the value was a secret.
fn mask_value(text: &[u8], tokens: &[Token], i: usize, bare: bool, masks: &mut Masks) -> bool {
    let Some(t) = tokens.get(i) else { return false };
    match t.kind {
        Kind::Str | Kind::Number => {
            masks.spans.push((t.start, t.end, Span::Secret));
            true
        }
        Kind::Param => {
            masks.params = true;
            true
        }
        Kind::Word
            if tokens
                .get(i + 1)
                .is_some_and(|n| n.kind == Kind::Punct(b'(')) =>
        {
            mask_group(tokens, i + 1, masks)
        }
        Kind::Word | Kind::Quoted if bare && !text[t.start..t.end].starts_with(b"@") => {
            masks.spans.push((t.start, t.end, Span::Secret));
            true
        }
        _ => false,
    }
}

/// Masks every literal between the parenthesis at `open` and its match.
fn mask_group(tokens: &[Token], open: usize, masks: &mut Masks) -> bool {
    let mut depth = 0usize;
    let mut masked = false;
    for t in &tokens[open..] {
        match t.kind {
            Kind::Punct(b'(') => depth += 1,
            Kind::Punct(b')') => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Kind::Punct(b';') => break,
            Kind::Str | Kind::Number => {
                masks.spans.push((t.start, t.end, Span::Secret));
                masked = true;
            }
            Kind::Param => {
                masks.params = true;
                masked = true;
            }
            _ => {}
        }
    }
    masked
}

/// The arguments of a procedure call from `i` (`(a, b)` or T-SQL's bare `a, b`): masks those at
/// `positions` and those passed by one of `names`.
fn mask_arguments(
    text: &[u8],
    tokens: &[Token],
    mut i: usize,
    positions: &[usize],
    names: &[&str],
    masks: &mut Masks,
) {
    let parenthesized = tokens.get(i).is_some_and(|t| t.kind == Kind::Punct(b'('));
    if parenthesized {
        i += 1;
    }
    let mut position = 1;
    let mut depth = 0usize;
    let mut secret = positions.contains(&position);
    let mut first_of_argument = true;
    while let Some(t) = tokens.get(i) {
        if first_of_argument {
            first_of_argument = false;
            let is_named = t.kind == Kind::Word
                && text[t.start..t.end].starts_with(b"@")
                && tokens
                    .get(i + 1)
                    .is_some_and(|n| n.kind == Kind::Punct(b'='));
            if is_named {
                let name = &text[t.start..t.end];
                secret = names
                    .iter()
                    .any(|n| name.eq_ignore_ascii_case(n.as_bytes()));
                i += 2;
                continue;
            }
        }
        match t.kind {
            Kind::Punct(b'(') => depth += 1,
            Kind::Punct(b')') if depth == 0 => return,
            Kind::Punct(b')') => depth -= 1,
            Kind::Punct(b';') => return,
            Kind::Punct(b',') if depth == 0 => {
                position += 1;
                secret = positions.contains(&position);
                first_of_argument = true;
            }
            Kind::Str | Kind::Number if secret => masks.spans.push((t.start, t.end, Span::Secret)),
            Kind::Param if secret => masks.params = true,
            // T-SQL without parentheses: the call ends where no comma follows an argument.
            _ if !parenthesized
                && depth == 0
                && !tokens
                    .get(i + 1)
                    .is_some_and(|n| n.kind == Kind::Punct(b',')) =>
            {
                return;
            }
            _ => {}
        }
        i += 1;
    }
}

/// A string literal holding a connection string's password or a URL with a password.
fn holds_credentials(literal: &[u8]) -> bool {
    let lower = |i: usize| literal[i].to_ascii_lowercase();
    for i in 0..literal.len() {
        for key in [&b"password"[..], b"pwd"] {
            if literal.len() - i >= key.len() && literal[i..i + key.len()].eq_ignore_ascii_case(key)
            {
                let after = &literal[i + key.len()..];
                let gap = after.iter().take_while(|c| c.is_ascii_whitespace()).count();
                if after.get(gap) == Some(&b'=') {
                    return true;
                }
            }
        }
        if lower(i) == b':' && literal[i..].starts_with(b"://") {
            // scheme://user:secret@host
            let authority = &literal[i + 3..];
            let end = authority
                .iter()
                .position(|c| matches!(c, b'/' | b'?' | b'#' | b'\'' | b'"' | b' '))
                .unwrap_or(authority.len());
            let authority = &authority[..end];
            if let Some(at) = authority.iter().rposition(|&c| c == b'@')
                && authority[..at].contains(&b':')
            {
                return true;
            }
        }
    }
    false
}

fn apply(text: &str, mut masks: Masks) -> Redacted {
    // Secrets first where a span is both.
    masks
        .spans
        .sort_unstable_by_key(|&(start, end, kind)| (start, kind, end));
    let mut out = Redacted {
        params: masks.params,
        ..Redacted::default()
    };
    let mut text_out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end, kind) in masks.spans {
        if start < at {
            continue; // the same token, already masked
        }
        // Tokens start and end at ASCII bytes or the end of the text: char boundaries.
        let (Some(before), Some(value)) = (text.get(at..start), text.get(start..end)) else {
            continue;
        };
        text_out.push_str(before);
        let string = is_string_token(value);
        match kind {
            Span::Secret => {
                out.password = true;
                text_out.push_str(if string { "'***'" } else { SECRET_MASK });
            }
            Span::Literal => {
                out.literal = true;
                text_out.push_str(LITERAL_MASK);
            }
        }
        // Error messages quote the value as written or its content: scrub both. Short literals
        // are left in messages ("line 1"), never secrets.
        if kind == Span::Secret || value.len() >= 3 {
            let content = if string { string_content(value) } else { value };
            if !content.is_empty() && content != value {
                out.values.push(content.to_owned());
            }
            out.values.push(value.to_owned());
        }
        at = end;
    }
    text_out.push_str(text.get(at..).unwrap_or_default());
    out.text = text_out;
    out
}

/// A string literal's token: quoted, or a prefix of letters then a quote (`N'..'`, `q'[..]'`).
fn is_string_token(value: &str) -> bool {
    let rest = value.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    rest.starts_with(['\'', '"', '$'])
}

/// A string token without its prefix and quotes (escapes left as written).
fn string_content(value: &str) -> &str {
    let rest = value.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    if let Some(tagged) = rest.strip_prefix('$') {
        // $tag$...$tag$
        let tag_len = tagged.find('$').map_or(0, |p| p + 2);
        let inner = rest.get(tag_len..).unwrap_or_default();
        return inner
            .get(..inner.len().saturating_sub(tag_len))
            .unwrap_or(inner);
    }
    let inner = rest.get(1..).unwrap_or_default();
    let inner = inner.strip_suffix(['\'', '"']).unwrap_or(inner);
    // q'[...]': the delimiters too.
    let prefix = &value[..value.len() - rest.len()];
    if prefix.ends_with(['q', 'Q']) {
        return inner.get(1..inner.len().saturating_sub(1)).unwrap_or(inner);
    }
    inner
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(engine: Engine, text: &str) -> String {
        redact(text, engine, Mode::Passwords).map_or_else(|| text.to_owned(), |r| r.text)
    }

    /// (input, expected) per engine: each secret masked, everything else byte for byte.
    #[test]
    fn postgres_passwords() {
        let cases = [
            (
                "ALTER USER app PASSWORD 'hunter2'",
                "ALTER USER app PASSWORD '***'",
            ),
            (
                "create role \"Password\" login encrypted password 'it''s; -- not a comment'",
                "create role \"Password\" login encrypted password '***'",
            ),
            (
                "ALTER ROLE r WITH PASSWORD E'a\\'b c' VALID UNTIL '2030-01-01'",
                "ALTER ROLE r WITH PASSWORD '***' VALID UNTIL '2030-01-01'",
            ),
            (
                "ALTER ROLE r PASSWORD $q$it's $$ here$q$; SELECT 1",
                "ALTER ROLE r PASSWORD '***'; SELECT 1",
            ),
            ("ALTER ROLE r PASSWORD $$x$$", "ALTER ROLE r PASSWORD '***'"),
            (
                "/* don't */ ALTER USER u /* nested /* it's */ */ PASSWORD 'SCRAM-SHA-256$4096:abc'",
                "/* don't */ ALTER USER u /* nested /* it's */ */ PASSWORD '***'",
            ),
            (
                "-- it's a test\nALTER USER u PASSWORD 'p1'; ALTER USER v PASSWORD NULL",
                "-- it's a test\nALTER USER u PASSWORD '***'; ALTER USER v PASSWORD NULL",
            ),
            (
                "CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password 'pw')",
                "CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password '***')",
            ),
            (
                "CREATE SUBSCRIPTION s CONNECTION 'host=h dbname=d password = pw' PUBLICATION p",
                "CREATE SUBSCRIPTION s CONNECTION '***' PUBLICATION p",
            ),
            (
                "SELECT dblink_connect('postgresql://rep:pw@db.example.com/app')",
                "SELECT dblink_connect('***')",
            ),
            (
                "SELECT id FROM users WHERE password = crypt('guess', password)",
                "SELECT id FROM users WHERE password = crypt('***', password)",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(masked(Engine::PostgreSql, input), expected, "{input}");
        }
    }

    #[test]
    fn mysql_passwords() {
        let cases = [
            (
                "CREATE USER 'app'@'%' IDENTIFIED BY 'pa\\'ss''wd'",
                "CREATE USER 'app'@'%' IDENTIFIED BY '***'",
            ),
            (
                "ALTER USER app IDENTIFIED BY \"new\" REPLACE 'old' RETAIN CURRENT PASSWORD",
                "ALTER USER app IDENTIFIED BY '***' REPLACE '***' RETAIN CURRENT PASSWORD",
            ),
            (
                "alter user app identified with caching_sha2_password by 'x' password expire interval 90 day",
                "alter user app identified with caching_sha2_password by '***' password expire interval 90 day",
            ),
            (
                "CREATE USER u IDENTIFIED WITH mysql_native_password AS '*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19'",
                "CREATE USER u IDENTIFIED WITH mysql_native_password AS '***'",
            ),
            (
                "SET PASSWORD FOR 'app'@'10.0.0.%' = 'secret'",
                "SET PASSWORD FOR 'app'@'10.0.0.%' = '***'",
            ),
            (
                "SET PASSWORD = PASSWORD('old-style')",
                "SET PASSWORD = PASSWORD('***')",
            ),
            (
                "GRANT ALL ON db.* TO u IDENTIFIED BY PASSWORD '*hash'",
                "GRANT ALL ON db.* TO u IDENTIFIED BY PASSWORD '***'",
            ),
            (
                "# it's\nCREATE USER u /*!80000 IDENTIFIED BY 'x' */",
                "# it's\nCREATE USER u /*!80000 IDENTIFIED BY '***' */",
            ),
            (
                "CHANGE REPLICATION SOURCE TO SOURCE_HOST='h', SOURCE_PASSWORD='r', SOURCE_PORT=3306",
                "CHANGE REPLICATION SOURCE TO SOURCE_HOST='h', SOURCE_PASSWORD='***', SOURCE_PORT=3306",
            ),
            (
                "CALL mysql.rds_set_external_master('h', 3306, 'repl', 'pw', 'bin.01', 4, 0)",
                "CALL mysql.rds_set_external_master('h', 3306, 'repl', '***', 'bin.01', 4, 0)",
            ),
            (
                "CREATE USER u IDENTIFIED BY RANDOM PASSWORD",
                "CREATE USER u IDENTIFIED BY RANDOM PASSWORD",
            ),
            ("SELECT 1--1 FROM t", "SELECT 1--1 FROM t"),
        ];
        for (input, expected) in cases {
            assert_eq!(masked(Engine::MySql, input), expected, "{input}");
        }
    }

    #[test]
    fn oracle_passwords() {
        let cases = [
            (
                "CREATE USER app IDENTIFIED BY Tiger123",
                "CREATE USER app IDENTIFIED BY ***",
            ),
            (
                "alter user app identified by \"p@ss word\" replace old_pw",
                "alter user app identified by '***' replace ***",
            ),
            (
                "ALTER USER app IDENTIFIED BY VALUES 'S:8F2D...;T:ABC'",
                "ALTER USER app IDENTIFIED BY VALUES '***'",
            ),
            (
                "CREATE DATABASE LINK l CONNECT TO u IDENTIFIED BY pw USING q'[it's]'",
                "CREATE DATABASE LINK l CONNECT TO u IDENTIFIED BY *** USING q'[it's]'",
            ),
            (
                "ALTER USER app IDENTIFIED EXTERNALLY",
                "ALTER USER app IDENTIFIED EXTERNALLY",
            ),
            (
                "ALTER USER app PASSWORD EXPIRE",
                "ALTER USER app PASSWORD EXPIRE",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(masked(Engine::Oracle, input), expected, "{input}");
        }
    }

    #[test]
    fn sql_server_passwords() {
        let cases = [
            (
                "CREATE LOGIN [app] WITH PASSWORD = N'Str0ng''!' MUST_CHANGE, CHECK_POLICY = ON",
                "CREATE LOGIN [app] WITH PASSWORD = '***' MUST_CHANGE, CHECK_POLICY = ON",
            ),
            (
                "ALTER LOGIN app WITH PASSWORD = 'n' OLD_PASSWORD = 'o'",
                "ALTER LOGIN app WITH PASSWORD = '***' OLD_PASSWORD = '***'",
            ),
            (
                "CREATE LOGIN l WITH PASSWORD = 0x0200ABCDEF HASHED",
                "CREATE LOGIN l WITH PASSWORD = *** HASHED",
            ),
            (
                "CREATE MASTER KEY ENCRYPTION BY PASSWORD = 'k'; SELECT 'password'",
                "CREATE MASTER KEY ENCRYPTION BY PASSWORD = '***'; SELECT 'password'",
            ),
            (
                "CREATE CREDENTIAL c WITH IDENTITY = 'u', SECRET = 's3'",
                "CREATE CREDENTIAL c WITH IDENTITY = 'u', SECRET = '***'",
            ),
            (
                "EXEC sp_addlogin 'bob', 'pw', 'db' SELECT 'x'",
                "EXEC sp_addlogin 'bob', '***', 'db' SELECT 'x'",
            ),
            (
                "EXEC [dbo].[sp_setapprole] @rolename = 'r', @password = N'pw'",
                "EXEC [dbo].[sp_setapprole] @rolename = 'r', @password = '***'",
            ),
            (
                "EXEC sp_password 'old', 'new', 'bob'",
                "EXEC sp_password '***', '***', 'bob'",
            ),
            (
                "EXEC sp_addlinkedsrvlogin 'S', 'false', NULL, 'remote', 'pw'",
                "EXEC sp_addlinkedsrvlogin 'S', 'false', NULL, 'remote', '***'",
            ),
            (
                "SELECT * FROM OPENROWSET('MSOLEDBSQL', 'Server=s;UID=u;PWD=pw;', 'SELECT 1')",
                "SELECT * FROM OPENROWSET('MSOLEDBSQL', '***', 'SELECT 1')",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(masked(Engine::SqlServer, input), expected, "{input}");
        }
    }

    #[test]
    fn statements_without_secrets_are_not_touched() {
        for engine in [
            Engine::PostgreSql,
            Engine::MySql,
            Engine::Oracle,
            Engine::SqlServer,
            Engine::Unknown,
        ] {
            for text in [
                "SELECT * FROM t WHERE a = 'password reset'",
                "SELECT password FROM users",
                "ALTER USER app PASSWORD EXPIRE",
                "SELECT 'https://example.com/a?b=c'",
                "",
            ] {
                assert_eq!(
                    redact(text, engine, Mode::Passwords),
                    None,
                    "{engine:?} {text}"
                );
            }
        }
    }

    #[test]
    fn bind_parameters_mark_the_parameter_list() {
        let r = redact(
            "UPDATE users SET password = $1 WHERE id = $2",
            Engine::PostgreSql,
            Mode::Passwords,
        )
        .unwrap();
        assert!(r.params && !r.literal);
        assert_eq!(r.text, "UPDATE users SET password = $1 WHERE id = $2");
        assert_eq!(r.kinds(), [KIND_PASSWORD]);
        let r = redact("SET PASSWORD FOR u = ?", Engine::MySql, Mode::Passwords).unwrap();
        assert!(r.params);
        let r = redact(
            "ALTER USER u IDENTIFIED BY :pw",
            Engine::Oracle,
            Mode::Passwords,
        )
        .unwrap();
        assert!(r.params);
    }

    #[test]
    fn literals_mode_masks_every_literal_and_secrets_first() {
        let r = redact(
            "INSERT INTO t (a, \"b\") VALUES ('x''y', 42, -1.5e+3, E'z', $$w$$) -- 'c'",
            Engine::PostgreSql,
            Mode::Literals,
        )
        .unwrap();
        assert_eq!(
            r.text,
            "INSERT INTO t (a, \"b\") VALUES (?, ?, -?, ?, ?) -- 'c'"
        );
        assert_eq!(r.kinds(), [KIND_LITERAL]);
        let r = redact(
            "ALTER USER u PASSWORD 'p' VALID UNTIL '2030-01-01'",
            Engine::PostgreSql,
            Mode::Literals,
        )
        .unwrap();
        assert_eq!(r.text, "ALTER USER u PASSWORD '***' VALID UNTIL ?");
        assert_eq!(r.kinds(), [KIND_PASSWORD, KIND_LITERAL]);
        assert_eq!(
            redact("SELECT a FROM t1", Engine::MySql, Mode::Literals),
            None
        );
    }

    #[test]
    fn values_to_scrub_include_the_content() {
        let r = redact(
            "ALTER USER u PASSWORD E'hun''ter'",
            Engine::PostgreSql,
            Mode::Passwords,
        )
        .unwrap();
        assert!(r.values.contains(&"hun''ter".to_owned()), "{:?}", r.values);
        let r = redact(
            "CREATE USER u IDENTIFIED BY q'[a'b]'",
            Engine::Oracle,
            Mode::Passwords,
        )
        .unwrap();
        assert!(r.values.contains(&"a'b".to_owned()), "{:?}", r.values);
        let r = redact(
            "ALTER ROLE r PASSWORD $t$pw$t$",
            Engine::PostgreSql,
            Mode::Passwords,
        )
        .unwrap();
        assert!(r.values.contains(&"pw".to_owned()), "{:?}", r.values);
    }

    /// A deterministic generator (xorshift), so a failure names its seed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    const ENGINES: [Engine; 5] = [
        Engine::PostgreSql,
        Engine::MySql,
        Engine::Oracle,
        Engine::SqlServer,
        Engine::Unknown,
    ];

    #[test]
    fn fuzz_never_panics_and_keeps_text_outside_masks() {
        // Fragments that stress the lexer: every quote, comment and escape opener, unterminated.
        let pieces = [
            "'",
            "\"",
            "`",
            "[",
            "]",
            "$",
            "$$",
            "$a$",
            "$1",
            "?",
            ":p",
            "@",
            "@@v",
            "--",
            "-- ",
            "#",
            "/*",
            "*/",
            "/*!",
            "\\",
            "\n",
            " ",
            ";",
            "(",
            ")",
            ",",
            "=",
            "PASSWORD",
            "identified",
            "BY",
            "WITH",
            "REPLACE",
            "FOR",
            "VALUES",
            "sp_addlogin",
            "SECRET",
            "E'",
            "N'",
            "q'[",
            "x'",
            "0x1F",
            "1e+5",
            ".5",
            "é",
            "日本",
            "pwd=",
            "://u:p@h",
            "a",
            "SELECT",
            "RANDOM",
        ];
        let mut rng = Rng(0x5EED_0001);
        for case in 0..20_000 {
            let n = rng.below(24);
            let text: String = (0..n).map(|_| rng.pick(&pieces)).collect();
            let engine = ENGINES[case % ENGINES.len()];
            for mode in [Mode::Passwords, Mode::Literals] {
                if let Some(r) = redact(&text, engine, mode) {
                    assert!(!r.text.is_empty() || text.is_empty(), "{text:?}");
                    assert!(r.password || r.literal || r.params, "{text:?}");
                }
            }
        }
        // Arbitrary bytes, as lossy text.
        for _ in 0..5_000 {
            let bytes: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
            let text = String::from_utf8_lossy(&bytes);
            for engine in ENGINES {
                let _ = redact(&text, engine, Mode::Literals);
            }
        }
    }

    /// A secret of hard characters, written as a literal the engine would read back as it.
    fn secret(rng: &mut Rng, n: usize) -> String {
        let chars = [
            "a", "Z", "9", "'", "\"", "$", ";", "-", "*", "/", "#", " ", "@", "\\", "é", "%", ",",
            ")",
        ];
        let body: String = (0..rng.below(12)).map(|_| rng.pick(&chars)).collect();
        // A marker that no other part of the statement contains.
        format!("Qx{n}v{body}Kq")
    }

    fn quote(engine: Engine, secret: &str, rng: &mut Rng) -> String {
        let doubled = format!("'{}'", secret.replace('\'', "''"));
        match (engine, rng.below(3)) {
            (Engine::PostgreSql, 1) if !secret.contains("$x$") => format!("$x${secret}$x$"),
            (Engine::PostgreSql, 2) => {
                format!("E'{}'", secret.replace('\\', "\\\\").replace('\'', "\\'"))
            }
            (Engine::MySql, 1) => {
                format!("'{}'", secret.replace('\\', "\\\\").replace('\'', "\\'"))
            }
            (Engine::MySql, 2) => {
                format!("\"{}\"", secret.replace('\\', "\\\\").replace('"', "\\\""))
            }
            (Engine::MySql, _) => doubled.replace('\\', "\\\\"),
            (Engine::Oracle, 1) if !secret.contains("]'") => format!("q'[{secret}]'"),
            (Engine::SqlServer, 1) => format!("N{doubled}"),
            _ => doubled,
        }
    }

    #[test]
    fn fuzz_planted_secrets_never_get_through() {
        let templates: [(Engine, &[&str]); 4] = [
            (
                Engine::PostgreSql,
                &[
                    "ALTER USER {u} PASSWORD {s}",
                    "CREATE ROLE {u} WITH LOGIN ENCRYPTED PASSWORD {s} VALID UNTIL 'infinity'",
                    "alter role {u} password {s}",
                    "CREATE USER MAPPING FOR {u} SERVER s OPTIONS (user '{u}', password {s})",
                ],
            ),
            (
                Engine::MySql,
                &[
                    "CREATE USER '{u}'@'%' IDENTIFIED BY {s}",
                    "ALTER USER {u} IDENTIFIED BY {s} REPLACE {s2}",
                    "ALTER USER {u} IDENTIFIED WITH caching_sha2_password BY {s}",
                    "SET PASSWORD FOR '{u}'@'localhost' = {s}",
                    "CHANGE MASTER TO MASTER_USER='{u}', MASTER_PASSWORD={s}",
                    "CALL mysql.rds_set_external_source('h', 3306, '{u}', {s}, 'b', 4, 1)",
                ],
            ),
            (
                Engine::Oracle,
                &[
                    "CREATE USER {u} IDENTIFIED BY {s}",
                    "ALTER USER {u} IDENTIFIED BY {s} REPLACE {s2}",
                ],
            ),
            (
                Engine::SqlServer,
                &[
                    "CREATE LOGIN [{u}] WITH PASSWORD = {s}, CHECK_POLICY = OFF",
                    "ALTER LOGIN {u} WITH PASSWORD = {s} OLD_PASSWORD = {s2}",
                    "EXEC sp_addlogin '{u}', {s}",
                    "EXEC sp_setapprole @rolename = '{u}', @password = {s}",
                ],
            ),
        ];
        let noise_before = [
            "",
            "/* it's a comment; PASSWORD 'decoy' */ ",
            "-- don't\n",
            "SELECT 'a;b', \"c\" FROM t; ",
            "  \n\t",
        ];
        let noise_after = ["", ";", "; SELECT 1", " -- it's done", "; /* ' */ COMMIT"];
        let mut rng = Rng(0x5EED_0002);
        for n in 0..4_000 {
            let (engine, list) = templates[n % templates.len()];
            let template = rng.pick(list);
            let (s1, s2) = (secret(&mut rng, 2 * n), secret(&mut rng, 2 * n + 1));
            let user = format!("user_{n}");
            let mut statement = template
                .replace("{u}", &user)
                .replace("{s2}", &quote(engine, &s2, &mut rng))
                .replace("{s}", &quote(engine, &s1, &mut rng));
            if rng.below(2) == 0 {
                statement = statement
                    .to_ascii_lowercase()
                    .replace(&user.to_ascii_lowercase(), &user);
            }
            let mut before = rng.pick(&noise_before);
            if engine == Engine::MySql && before.starts_with("--") {
                before = "# don't\n";
            }
            let text = format!("{before}{statement}{}", rng.pick(&noise_after));
            let out = masked(engine, &text);
            for s in [&s1, &s2] {
                if text.contains(s.as_str()) || text.contains(&s.replace('\'', "''")) {
                    let marker = &s[..s.find('v').unwrap_or(2)];
                    assert!(
                        !out.contains(marker),
                        "{engine:?} leaked {s:?}\n in: {text}\nout: {out}"
                    );
                }
            }
            assert!(
                out.contains(&user),
                "{engine:?} over-masked the user\n in: {text}\nout: {out}"
            );
        }
    }
}
