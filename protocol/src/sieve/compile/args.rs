//! Reading one command's or test's arguments: tagged ones (with their parameter, if the tag
//! takes one) apart from the positional ones, with errors that name the line and the command.

use std::collections::VecDeque;

use super::super::parse::Arg;
use super::super::CompileError;

/// The tags that take a parameter (the next argument).
const TAKES_PARAM: &[&str] = &[
    "comparator",
    "value",
    "count",
    "index",
    "zone",
    "days",
    "seconds",
    "subject",
    "from",
    "addresses",
    "handle",
    "flags",
    "content",
];

/// A tagged argument with its parameter.
#[derive(Debug)]
pub(crate) struct Tag {
    pub(crate) name: String,
    pub(crate) line: u32,
    param: Option<Arg>,
}

impl Tag {
    fn missing(&self, what: &str) -> CompileError {
        err(self.line, format!(":{} needs {what}", self.name))
    }

    /// The parameter as a single string.
    pub(crate) fn string(&self) -> Result<String, CompileError> {
        match &self.param {
            Some(Arg::Str(s)) => Ok(s.clone()),
            _ => Err(self.missing("a string")),
        }
    }

    /// The parameter as a string list (a single string is a list of one).
    pub(crate) fn list(&self) -> Result<Vec<String>, CompileError> {
        match &self.param {
            Some(Arg::Str(s)) => Ok(vec![s.clone()]),
            Some(Arg::List(l)) => Ok(l.clone()),
            _ => Err(self.missing("a string list")),
        }
    }

    /// The parameter as a number.
    pub(crate) fn number(&self) -> Result<u64, CompileError> {
        match &self.param {
            Some(Arg::Num(n)) => Ok(*n),
            _ => Err(self.missing("a number")),
        }
    }

    /// The error for a tag the command does not know.
    pub(crate) fn unknown(&self, command: &str) -> CompileError {
        err(
            self.line,
            format!("'{command}' does not take the tag :{}", self.name),
        )
    }
}

/// The arguments of one command or test, tags split off.
pub(crate) struct Args {
    pub(crate) command: String,
    pub(crate) line: u32,
    tags: Vec<Tag>,
    positional: VecDeque<(Arg, u32)>,
}

/// A compile error at a line.
pub(crate) fn err(line: u32, message: impl Into<String>) -> CompileError {
    CompileError {
        line,
        message: message.into(),
    }
}

impl Args {
    /// Splits `raw` into tags (each with its parameter) and positional arguments.
    pub(crate) fn new(
        command: &str,
        line: u32,
        raw: Vec<(Arg, u32)>,
    ) -> Result<Args, CompileError> {
        let mut tags = Vec::new();
        let mut positional = VecDeque::new();
        let mut it = raw.into_iter();
        while let Some((arg, at)) = it.next() {
            match arg {
                Arg::Tag(name) => {
                    if !positional.is_empty() {
                        return Err(err(at, format!("the tag :{name} must come before the other arguments of '{command}'")));
                    }
                    let param = if TAKES_PARAM.contains(&name.as_str()) {
                        let Some((p, _)) = it.next() else {
                            return Err(err(at, format!(":{name} needs a parameter")));
                        };
                        Some(p)
                    } else {
                        None
                    };
                    tags.push(Tag {
                        name,
                        line: at,
                        param,
                    });
                }
                other => positional.push_back((other, at)),
            }
        }
        Ok(Args {
            command: command.to_string(),
            line,
            tags,
            positional,
        })
    }

    /// The tags, to be consumed by the command's own reader.
    pub(crate) fn take_tags(&mut self) -> Vec<Tag> {
        std::mem::take(&mut self.tags)
    }

    /// How many positional arguments are left.
    pub(crate) fn remaining(&self) -> usize {
        self.positional.len()
    }

    fn next(&mut self, what: &str) -> Result<(Arg, u32), CompileError> {
        self.positional.pop_front().ok_or_else(|| {
            err(
                self.line,
                format!("'{}' is missing its {what} argument", self.command),
            )
        })
    }

    /// The next positional argument, which must be one string.
    pub(crate) fn string(&mut self, what: &str) -> Result<String, CompileError> {
        match self.next(what)? {
            (Arg::Str(s), _) => Ok(s),
            (_, line) => Err(err(
                line,
                format!("'{}' expects a string as its {what}", self.command),
            )),
        }
    }

    /// The next positional argument as a string list.
    pub(crate) fn list(&mut self, what: &str) -> Result<Vec<String>, CompileError> {
        match self.next(what)? {
            (Arg::Str(s), _) => Ok(vec![s]),
            (Arg::List(l), _) => Ok(l),
            (_, line) => Err(err(
                line,
                format!("'{}' expects a string list as its {what}", self.command),
            )),
        }
    }

    /// The next positional argument, which must be a number.
    pub(crate) fn number(&mut self, what: &str) -> Result<u64, CompileError> {
        match self.next(what)? {
            (Arg::Num(n), _) => Ok(n),
            (_, line) => Err(err(
                line,
                format!("'{}' expects a number as its {what}", self.command),
            )),
        }
    }

    /// Checks that nothing is left over.
    pub(crate) fn finish(self) -> Result<(), CompileError> {
        match self.positional.front() {
            Some((_, line)) => Err(err(
                *line,
                format!("'{}' has too many arguments", self.command),
            )),
            None => Ok(()),
        }
    }
}
