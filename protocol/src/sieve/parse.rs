//! The parser (RFC 5228 §8.2): tokens to a generic tree of commands, arguments, tests and
//! blocks. Nesting of blocks and tests together is capped at [`MAX_NESTING`], so no script can
//! make the parser (or the interpreter) recurse deeply.

use super::lex::{Tok, Token};
use super::CompileError;

/// Deepest nesting of blocks and tests together.
pub(crate) const MAX_NESTING: usize = 32;

/// One argument of a command or test.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    /// `:tag`
    Tag(String),
    /// A number.
    Num(u64),
    /// A single string.
    Str(String),
    /// `[ "a", "b" ]`
    List(Vec<String>),
}

/// A test as written: `name args (tests)`.
#[derive(Debug, Clone)]
pub(crate) struct TestNode {
    pub(crate) name: String,
    pub(crate) line: u32,
    pub(crate) args: Vec<(Arg, u32)>,
    pub(crate) tests: Vec<TestNode>,
}

/// A command as written: `name args [test|(tests)] (; | { block })`.
#[derive(Debug, Clone)]
pub(crate) struct CommandNode {
    pub(crate) name: String,
    pub(crate) line: u32,
    pub(crate) args: Vec<(Arg, u32)>,
    pub(crate) tests: Vec<TestNode>,
    /// Whether a single test (not a parenthesised list) followed the arguments.
    pub(crate) block: Option<Vec<CommandNode>>,
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

/// Parses a whole script.
pub(crate) fn parse(tokens: Vec<Token>) -> Result<Vec<CommandNode>, CompileError> {
    let mut p = Parser { tokens, pos: 0 };
    let commands = p.commands(0)?;
    if let Some(t) = p.peek() {
        return Err(error(t.line, format!("unexpected {}", describe(&t.tok))));
    }
    Ok(commands)
}

fn error(line: u32, message: impl Into<String>) -> CompileError {
    CompileError {
        line,
        message: message.into(),
    }
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(n) => format!("identifier '{n}'"),
        Tok::Tag(n) => format!("tag ':{n}'"),
        Tok::Str(_) => "a string".into(),
        Tok::Num(_) => "a number".into(),
        Tok::LBracket => "'['".into(),
        Tok::RBracket => "']'".into(),
        Tok::Comma => "','".into(),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::LBrace => "'{'".into(),
        Tok::RBrace => "'}'".into(),
        Tok::Semi => "';'".into(),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn last_line(&self) -> u32 {
        self.tokens.last().map_or(1, |t| t.line)
    }

    fn bump(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, want: &Tok, what: &str) -> Result<(), CompileError> {
        match self.bump() {
            Some(t) if &t.tok == want => Ok(()),
            Some(t) => Err(error(
                t.line,
                format!("expected {what}, found {}", describe(&t.tok)),
            )),
            None => Err(error(
                self.last_line(),
                format!("expected {what} at the end"),
            )),
        }
    }

    fn commands(&mut self, depth: usize) -> Result<Vec<CommandNode>, CompileError> {
        let mut out = Vec::new();
        while let Some(t) = self.peek() {
            match &t.tok {
                Tok::RBrace => break,
                Tok::Ident(_) => out.push(self.command(depth)?),
                other => {
                    return Err(error(
                        t.line,
                        format!("expected a command, found {}", describe(other)),
                    ))
                }
            }
        }
        Ok(out)
    }

    fn command(&mut self, depth: usize) -> Result<CommandNode, CompileError> {
        let (name, line) = match self.bump() {
            Some(Token {
                tok: Tok::Ident(n),
                line,
            }) => (n, line),
            _ => return Err(error(self.last_line(), "expected a command")),
        };
        let args = self.arguments()?;
        let tests = self.test_part(depth)?;
        let block = match self.bump() {
            Some(Token { tok: Tok::Semi, .. }) => None,
            Some(Token {
                tok: Tok::LBrace,
                line,
            }) => {
                if depth + 1 > MAX_NESTING {
                    return Err(error(line, "blocks and tests are nested too deeply"));
                }
                let block = self.commands(depth + 1)?;
                self.expect(&Tok::RBrace, "'}'")?;
                Some(block)
            }
            Some(t) => {
                return Err(error(
                    t.line,
                    format!("expected ';' or '{{', found {}", describe(&t.tok)),
                ))
            }
            None => return Err(error(self.last_line(), "expected ';' at the end")),
        };
        Ok(CommandNode {
            name,
            line,
            args,
            tests,
            block,
        })
    }

    /// The optional test or parenthesised test list after a command's or test's arguments.
    fn test_part(&mut self, depth: usize) -> Result<Vec<TestNode>, CompileError> {
        let Some(t) = self.peek() else {
            return Ok(Vec::new());
        };
        let line = t.line;
        match &t.tok {
            Tok::Ident(_) | Tok::LParen if depth + 1 > MAX_NESTING => {
                Err(error(line, "blocks and tests are nested too deeply"))
            }
            Tok::Ident(_) => Ok(vec![self.test(depth + 1)?]),
            Tok::LParen => {
                self.bump();
                let mut tests = vec![self.test(depth + 1)?];
                while self.peek().map(|t| &t.tok) == Some(&Tok::Comma) {
                    self.bump();
                    tests.push(self.test(depth + 1)?);
                }
                self.expect(&Tok::RParen, "')' or ','")?;
                Ok(tests)
            }
            _ => Ok(Vec::new()),
        }
    }

    fn test(&mut self, depth: usize) -> Result<TestNode, CompileError> {
        let (name, line) = match self.bump() {
            Some(Token {
                tok: Tok::Ident(n),
                line,
            }) => (n, line),
            Some(t) => {
                return Err(error(
                    t.line,
                    format!("expected a test, found {}", describe(&t.tok)),
                ))
            }
            None => return Err(error(self.last_line(), "expected a test at the end")),
        };
        let args = self.arguments()?;
        let tests = self.test_part(depth)?;
        Ok(TestNode {
            name,
            line,
            args,
            tests,
        })
    }

    fn arguments(&mut self) -> Result<Vec<(Arg, u32)>, CompileError> {
        let mut args = Vec::new();
        while let Some(t) = self.peek() {
            let line = t.line;
            let arg = match &t.tok {
                Tok::Tag(n) => Arg::Tag(n.clone()),
                Tok::Num(n) => Arg::Num(*n),
                Tok::Str(s) => Arg::Str(s.clone()),
                Tok::LBracket => {
                    self.bump();
                    args.push((Arg::List(self.string_list()?), line));
                    continue;
                }
                _ => break,
            };
            self.bump();
            args.push((arg, line));
        }
        Ok(args)
    }

    fn string_list(&mut self) -> Result<Vec<String>, CompileError> {
        let mut list = Vec::new();
        loop {
            match self.bump() {
                Some(Token {
                    tok: Tok::Str(s), ..
                }) => list.push(s),
                Some(t) => {
                    return Err(error(
                        t.line,
                        format!("expected a string in a list, found {}", describe(&t.tok)),
                    ))
                }
                None => return Err(error(self.last_line(), "a string list is never closed")),
            }
            match self.bump() {
                Some(Token {
                    tok: Tok::Comma, ..
                }) => {}
                Some(Token {
                    tok: Tok::RBracket, ..
                }) => return Ok(list),
                Some(t) => {
                    return Err(error(
                        t.line,
                        format!("expected ',' or ']', found {}", describe(&t.tok)),
                    ))
                }
                None => return Err(error(self.last_line(), "a string list is never closed")),
            }
        }
    }
}
