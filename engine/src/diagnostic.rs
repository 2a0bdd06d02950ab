//! Diagnostics: every problem a stage finds, with a stable code and the place it points at.

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;

/// How bad a finding is. Errors make a runbook invalid; warnings do not (unless denied).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a diagnostic points at a mapping key or at the value stored under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Value,
    Key,
}

/// A resolved position in the source text. `line` and `column` are 1-based and count
/// characters; `offset` and `length` are in bytes, for snippet rendering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
    pub offset: usize,
    pub length: usize,
}

/// One finding. `pointer` is an RFC 6901 JSON pointer into the document; `location` is
/// filled in from the document's spans before the diagnostic is reported.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    pub message: String,
    pub pointer: Option<String>,
    pub target: Target,
    pub help: Option<String>,
    pub location: Option<Location>,
}

impl Diagnostic {
    pub fn new(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: code.severity(),
            code,
            message: message.into(),
            pointer: None,
            target: Target::Value,
            help: None,
            location: None,
        }
    }

    pub fn at(mut self, pointer: impl Into<String>) -> Diagnostic {
        self.pointer = Some(pointer.into());
        self
    }

    pub fn at_key(mut self, pointer: impl Into<String>) -> Diagnostic {
        self.pointer = Some(pointer.into());
        self.target = Target::Key;
        self
    }

    pub fn located(mut self, location: Location) -> Diagnostic {
        self.location = Some(location);
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Appends `segment` to a JSON pointer, escaping `~` and `/` as RFC 6901 requires.
pub fn pointer_push(pointer: &str, segment: impl Segment) -> String {
    // Exactly as long as it will be, unless the segment has escapes: a step keeps its pointer.
    let mut out = String::with_capacity(pointer.len() + 1 + segment.length());
    out.push_str(pointer);
    push_segment(&mut out, segment);
    out
}

/// Appends `/segment` to the pointer in `out`, escaped (a segment was turned into a string
/// and copied a character at a time: a thirtieth of validating the corpus).
pub fn push_segment(out: &mut String, segment: impl Segment) {
    out.push('/');
    segment.push_to(out);
}

/// What a pointer's segment can be made of: a key or an index.
pub trait Segment {
    fn push_to(&self, out: &mut String);

    /// Its length unescaped.
    fn length(&self) -> usize;
}

impl Segment for str {
    fn length(&self) -> usize {
        self.len()
    }

    fn push_to(&self, out: &mut String) {
        match self.bytes().any(|b| b == b'~' || b == b'/') {
            true => out.push_str(&self.replace('~', "~0").replace('/', "~1")),
            false => out.push_str(self),
        }
    }
}

impl Segment for String {
    fn length(&self) -> usize {
        self.len()
    }

    fn push_to(&self, out: &mut String) {
        self.as_str().push_to(out);
    }
}

impl Segment for usize {
    fn length(&self) -> usize {
        digits(*self)
    }

    /// The digits written by hand: `fmt` cost more than the rest of making a step's pointers.
    fn push_to(&self, out: &mut String) {
        let mut digits = [0; 20];
        let mut at = digits.len();
        let mut rest = *self;
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        digits[at..].iter().for_each(|&digit| out.push(char::from(digit)));
    }
}

impl<T: Segment + ?Sized> Segment for &T {
    fn length(&self) -> usize {
        (**self).length()
    }

    fn push_to(&self, out: &mut String) {
        (**self).push_to(out);
    }
}

/// How many digits `number` has, written in decimal.
pub fn digits(number: usize) -> usize {
    number.checked_ilog10().map_or(1, |log| log as usize + 1)
}

/// Splits a JSON pointer into unescaped segments, borrowed unless they hold an escape.
pub fn pointer_segments(pointer: &str) -> impl Iterator<Item = Cow<'_, str>> + '_ {
    pointer.split('/').skip(1).map(|segment| match segment.contains('~') {
        true => Cow::Owned(segment.replace("~1", "/").replace("~0", "~")),
        false => Cow::Borrowed(segment),
    })
}

/// A step of a path through a value, turned into a JSON pointer only when needed.
#[derive(Clone, Copy)]
pub enum PathSegment<'v> {
    Key(&'v str),
    Index(usize),
}

pub fn pointer_of(path: &[PathSegment<'_>]) -> String {
    let mut pointer = String::new();
    push_path(&mut pointer, path);
    pointer
}

/// Appends the segments of `path` to the pointer in `out`.
pub fn push_path(out: &mut String, path: &[PathSegment<'_>]) {
    for segment in path {
        match segment {
            PathSegment::Key(key) => push_segment(out, key),
            PathSegment::Index(i) => push_segment(out, i),
        }
    }
}

// Words that messages share, whichever stage writes them.

/// A value as a message names it: `the string "x"`, `a list`, `the number 3`.
pub fn describe_json(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {}", short(&Value::String(s.clone()))),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// A value as compact JSON, cut to 60 characters for a message.
pub fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 60 {
        return text;
    }
    let cut: String = text.chars().take(57).collect();
    format!("{cut}...")
}

/// Names longer than this get no "did you mean" (the longest AWS operation name is 70).
pub const MAX_SUGGESTED_LENGTH: usize = 256;

/// An error and its causes in one line, `outer: inner: innermost`, each text said once (a
/// library that repeats its cause in its own text is not echoed).
pub fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut next = Some(error);
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

/// `; did you mean `NAME`?` for the end of an error message, or nothing when no candidate is
/// close enough.
pub fn did_you_mean<'n>(name: &str, candidates: impl Iterator<Item = &'n str>) -> String {
    nearest(name, candidates).map_or(String::new(), |near| format!("; did you mean `{near}`?"))
}

/// The closest name by edit distance, when it is close enough to be a likely typo.
pub fn nearest<'n>(name: &str, candidates: impl Iterator<Item = &'n str>) -> Option<&'n str> {
    // Two edits cover a transposition (`strat` for `start`), the commonest typo.
    let length = name.chars().count();
    // No name is this long: a suggestion would cost the length squared per candidate.
    if length > MAX_SUGGESTED_LENGTH {
        return None;
    }
    let limit = (length / 3).max(2);
    let name: Vec<char> = name.chars().map(|c| c.to_ascii_lowercase()).collect();
    let counts = CharCounts::of(name.iter().copied());
    let mut distance = EditDistance::default();
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        // The distance is at least the difference in length, and at least what the counts
        // of characters tell apart: those are skipped unmeasured (an operation missing from
        // EC2's 750 was measured against every one of them).
        if candidate.chars().count().abs_diff(length) > limit
            || counts.edits_at_least(candidate.chars().map(|c| c.to_ascii_lowercase())) > limit
        {
            continue;
        }
        let Some(edits) = distance.within(&name, candidate, limit) else { continue };
        if best.is_none_or(|best| (edits, candidate) < best) {
            best = Some((edits, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// How many times each character occurs in a name, characters folded into 64 bins.
struct CharCounts([i32; 64]);

impl CharCounts {
    fn of(name: impl Iterator<Item = char>) -> CharCounts {
        let mut counts = [0; 64];
        for character in name {
            counts[u32::from(character) as usize % 64] += 1;
        }
        CharCounts(counts)
    }

    /// A lower bound of the edit distance to `other`: a substitution moves one character out
    /// of a bin and one into another, an insertion or deletion one (folding characters into
    /// the same bin can only lower the bound).
    fn edits_at_least(&self, other: impl Iterator<Item = char>) -> usize {
        let mut counts = self.0;
        for character in other {
            counts[u32::from(character) as usize % 64] -= 1;
        }
        let more: i32 = counts.iter().filter(|&&count| count > 0).sum();
        let fewer: i32 = counts.iter().filter(|&&count| count < 0).sum();
        usize::try_from(more.max(-fewer)).unwrap_or(0)
    }
}

/// Levenshtein distance, ASCII case ignored, with its rows kept from one candidate to the next.
#[derive(Default)]
struct EditDistance {
    candidate: Vec<char>,
    previous: Vec<usize>,
    current: Vec<usize>,
}

impl EditDistance {
    /// The distance from `name` (lowercase) to `candidate`, if it is at most `limit`: a row
    /// whose every cell is past the limit ends the measure.
    fn within(&mut self, name: &[char], candidate: &str, limit: usize) -> Option<usize> {
        self.candidate.clear();
        self.candidate.extend(candidate.chars().map(|c| c.to_ascii_lowercase()));
        let b = &self.candidate;
        self.previous.clear();
        self.previous.extend(0..=b.len());
        for (i, ca) in name.iter().enumerate() {
            self.current.clear();
            self.current.push(i + 1);
            for (j, cb) in b.iter().enumerate() {
                let substitution = self.previous[j] + usize::from(ca != cb);
                let edits = substitution.min(self.previous[j + 1] + 1).min(self.current[j] + 1);
                self.current.push(edits);
            }
            if self.current.iter().all(|&edits| edits > limit) {
                return None;
            }
            std::mem::swap(&mut self.previous, &mut self.current);
        }
        Some(self.previous[b.len()]).filter(|&edits| edits <= limit)
    }
}

macro_rules! codes {
    ($( $variant:ident = $text:literal, $severity:ident, $rule:literal, $summary:literal; )*) => {
        /// Every diagnostic code. The text form is stable: CI configurations and editors
        /// match on it, so a code is never renamed, only added.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $( $variant, )* }

        impl Code {
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];

            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $text, )* }
            }

            /// The default severity of findings with this code.
            pub fn severity(self) -> Severity {
                match self { $( Code::$variant => Severity::$severity, )* }
            }

            /// The rule of `ssm-automation.md` section 8 the code implements, if any.
            pub fn rule(self) -> &'static str {
                match self { $( Code::$variant => $rule, )* }
            }

            pub fn summary(self) -> &'static str {
                match self { $( Code::$variant => $summary, )* }
            }

            pub fn parse(text: &str) -> Option<Code> {
                match text { $( $text => Some(Code::$variant), )* _ => None }
            }
        }
    };
}

codes! {
    // Loading (V1, V17).
    ParseError = "parse-error", Error, "V1", "the file is not well-formed YAML or JSON";
    EmptyDocument = "empty-document", Error, "V1", "the file holds no document";
    DuplicateKey = "duplicate-key", Error, "V1", "a mapping has the same key twice";
    AliasBudget = "alias-budget", Error, "V1", "YAML aliases expand past the budget (alias bomb)";
    TooDeep = "too-deep", Error, "V1", "values are nested deeper than the engine accepts";
    DocumentTooLarge = "document-too-large", Warning, "V17", "over 64 KB: AWS would not accept the document";
    YamlLeniency = "yaml-leniency", Warning, "V1", "indentation YAML 1.2 refuses, read as PyYAML and SnakeYAML read it";
    YamlSsmRefuses = "yaml-ssm-refuses", Warning, "V1", "YAML that PyYAML, and so maybe SSM, refuses or reads differently";
    // Shape, checked by the JSON Schema.
    SchemaVersion = "schema-version", Error, "V2", "schemaVersion must be the string \"0.3\"";
    MissingMainSteps = "missing-main-steps", Error, "V3", "mainSteps is missing or empty";
    MissingStepProperty = "missing-step-property", Error, "V4", "a step lacks name, action or inputs";
    StepName = "step-name", Error, "V5", "a step name is not [a-zA-Z0-9_]+";
    UnknownKey = "unknown-key", Error, "8.2", "a top-level key the format does not define";
    UnknownStepKey = "unknown-step-key", Error, "8.2", "a step key the format does not define";
    ParameterDefinition = "parameter-definition", Error, "2.1", "a parameter definition is malformed";
    VariableDefinition = "variable-definition", Error, "3", "a variable definition is malformed";
    FilesDefinition = "files-definition", Error, "V16", "a files entry is malformed";
    StepOutputDefinition = "step-output-definition", Error, "7.4", "a step output is malformed";
    ActionInput = "action-input", Error, "6", "an action input is missing or has the wrong type";
    Schema = "schema", Error, "1", "the document does not match the runbook schema";
    // Semantic rules.
    DuplicateStepName = "duplicate-step-name", Error, "V5", "two steps share a name";
    UnknownAction = "unknown-action", Error, "V6", "the action is not an Automation action";
    InternalAction = "internal-action", Warning, "6", "an AWS-internal action: parsed, but not runnable locally";
    ChangeTemplateKey = "change-template-key", Warning, "1", "a Change Manager template key, ignored by the engine";
    UnknownStep = "unknown-step", Error, "V7", "a jump names a step that does not exist";
    OnFailureValue = "on-failure-value", Error, "V8", "onFailure is not Abort, Continue or step:NAME";
    OnCancelValue = "on-cancel-value", Error, "V8", "onCancel is not Abort or step:NAME";
    OnCancelTarget = "on-cancel-target", Error, "V9", "onCancel jumps to an action that cannot run on cancel";
    OnCancelNotAllowed = "on-cancel-not-allowed", Error, "V9", "onCancel on aws:loop or aws:updateVariable";
    BranchOperator = "branch-operator", Error, "V10", "an unknown branch operator";
    BranchStructure = "branch-structure", Error, "V10", "a malformed branch choice or condition";
    UndeclaredParameter = "undeclared-parameter", Error, "V12", "a reference names an undeclared parameter";
    SsmReferenceOutsideDefault = "ssm-reference-outside-default", Error, "V13", "{{ssm:...}} outside a parameter default";
    TemplatedKey = "templated-key", Error, "V14", "a key is built from a {{ }} reference";
    RunCommandInputType = "run-command-input-type", Error, "V15", "aws:runCommand input and parameter types disagree";
    MissingAttachment = "missing-attachment", Error, "V16", "an Attachment names no entry of files";
    ScriptSubstitution = "script-substitution", Warning, "6", "a parameter or step output pasted into a script's source, where a value runs as code";
    LoopOnFailure = "loop-on-failure", Warning, "4.5", "onFailure on an aws:loop, which AWS does not take when a body step fails";
    LoopStructure = "loop-structure", Error, "V18", "aws:loop needs Steps and exactly one of Iterators/LoopCondition";
    NestedLoop = "nested-loop", Error, "V18", "an aws:loop inside an aws:loop";
    UnknownStepReference = "unknown-step-reference", Error, "8.2", "a {{ step.Output }} reference to a step that does not exist";
    UnknownVariable = "unknown-variable", Error, "8.2", "a {{ variable:X }} reference to an undeclared variable";
    UnknownSystemVariable = "unknown-system-variable", Error, "5.2", "an unknown global: or automation: variable";
    UpdateVariable = "update-variable", Error, "8.2", "aws:updateVariable on an undeclared variable or with a value of the wrong type";
    UnknownDocumentOutput = "unknown-document-output", Error, "8.2", "a document output names an unknown step or output";
    ParameterDefaultType = "parameter-default-type", Error, "2.2", "a parameter default does not have the shape of its type";
    ApproversCount = "approvers-count", Error, "8.2", "MinRequiredApprovals exceeds the literal Approvers";
    SleepDuration = "sleep-duration", Error, "8.2", "aws:sleep without a valid Duration or Timestamp";
    CreateStackTemplate = "create-stack-template", Error, "8.2", "aws:createStack needs exactly one of TemplateBody/TemplateURL";
    ExecuteAutomationTargets = "execute-automation-targets", Error, "8.2", "aws:executeAutomation with both Targets and TargetMaps";
    FanOut = "execute-automation-fan-out", Error, "6.11", "aws:executeAutomation rate control that cannot be read, or that rates no targets";
    RunCommandTargets = "run-command-targets", Error, "8.2", "aws:runCommand without InstanceIds/Targets, or over 50 literal InstanceIds";
    CreateTagsResources = "create-tags-resources", Error, "8.2", "aws:createTags with a non-EC2 ResourceType and several ResourceIds";
    LoopLimit = "loop-limit", Error, "8.2", "over 100 literal Iterators or MaxIterations above 100";
    // The step graph, checked by the planner.
    Cycle = "cycle", Error, "V11", "steps can run in a circle forever";
    ParameterDefaultCycle = "parameter-default-cycle", Error, "2.5", "parameter defaults that refer to each other in a circle";
    ExpansionBudget = "expansion-budget", Error, "2.5", "a parameter default that grows past the engine's budget once filled in";
    ExpressionBudget = "expression-budget", Error, "5", "an x-expressions expression nested deeper than the engine's budget";
    Undo = "undo", Error, "x-undo", "an x-undo that names no step, sits on an aws:loop, or runs a loop or a branch";
    LockName = "lock-name", Error, "x-locks", "a lock name that is malformed, or reads more than parameters";
    // Portability to SSM Automation (`validate --for ssm`, `publish`).
    NotPortable = "not-portable", Error, "1", "an engine extension or expression SSM Automation does not run";
    UnreachableStep = "unreachable-step", Warning, "8.2", "a step no path from the first step reaches";
    OutputMayBeUnset = "output-may-be-unset", Warning, "8.2", "a step output referenced where its producer may not have succeeded";
    CriticalFailureJump = "critical-failure-jump", Warning, "4.6", "onFailure: step:X without isCritical: false ends the run Failed";
    UnknownOutput = "unknown-output", Warning, "8.2", "a reference to an output the step does not declare";
    AllowedPattern = "allowed-pattern", Warning, "2.4", "an allowedPattern the Java-compatible engine cannot compile";
    SelectorSyntax = "selector-syntax", Error, "7.3", "a selector outside the supported JSONPath subset, which fails every run";
    TimeoutAboveMaximum = "timeout-above-maximum", Warning, "8.4", "timeoutSeconds above the action's maximum";
    AwsService = "aws-service", Warning, "7.1", "an API action names a service the AWS models do not have";
    AwsOperation = "aws-operation", Warning, "7.1", "an API action names an operation its service does not have";
    AwsParameter = "aws-parameter", Warning, "7.1", "a request parameter unknown to the API model, missing, or of the wrong kind";
    // Parameter values supplied with -p / --params-file (section 8.3).
    MissingParameter = "missing-parameter", Error, "8.3", "a required parameter was not supplied";
    UndeclaredParameterValue = "undeclared-parameter-value", Error, "8.3", "a value was supplied for a parameter the runbook does not declare";
    ParameterType = "parameter-type", Error, "8.3", "a supplied value does not have the parameter's type";
    ParameterAllowedValues = "parameter-allowed-values", Error, "8.3", "a supplied value is not in allowedValues";
    ParameterPattern = "parameter-pattern", Error, "8.3", "a supplied value does not match allowedPattern";
    ParameterLength = "parameter-length", Error, "8.3", "a supplied value breaks minItems/maxItems/minChars/maxChars";
    // Scenario files (`runbook test`).
    ScenarioSchema = "scenario-schema", Error, "test", "the scenario file does not match schemas/test.schema.json";
    ScenarioRunbook = "scenario-runbook", Error, "test", "the runbook a scenario file tests cannot be found or is invalid";
    ScenarioDuplicateName = "scenario-duplicate-name", Error, "test", "two scenarios of one file share a name";
    ScenarioUnknownStep = "scenario-unknown-step", Error, "test", "a mock, answer or expectation names a step the runbook does not have";
    ScenarioUnknownOutput = "scenario-unknown-output", Error, "test", "a mocked or expected output the step does not have";
    ScenarioOutputType = "scenario-output-type", Error, "test", "a mocked output does not have the type the step declares";
    ScenarioMock = "scenario-mock", Error, "test", "a mock that cannot apply: wrong action, unknown AWS call, response that does not fit";
    ScenarioValue = "scenario-value", Error, "test", "a malformed value: a range, a time, a duration";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One example of an explanation: the mistake (`wrong`), its fix (`right`), or the runbook a
/// scenario example tests (`runbook`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub role: String,
    /// `runbook` (a runbook file), `scenario` (a scenario file beside `runbook.yaml`) or
    /// `snippet` (a fragment).
    pub kind: String,
    /// Command-line arguments that go with it (`-p NAME=VALUE`).
    pub arguments: Vec<String>,
    pub text: String,
}

/// What `runbook codes CODE` prints: what the check catches, why it matters, how to fix it,
/// and examples of the mistake and the fix, each standing on its own.
#[derive(Debug, Clone, Default)]
pub struct Explanation {
    pub paragraph: String,
    pub examples: Vec<Example>,
}

/// `=== CODE`, the paragraph, then `--- ROLE [KIND] [ARGUMENTS]` and each example's lines.
const EXPLANATIONS: &str = include_str!("diagnostic/explanations.txt");

impl Code {
    /// The code's explanation (every code has one; a test holds it).
    pub fn explanation(self) -> Option<Explanation> {
        let mut found: Option<Explanation> = None;
        for line in EXPLANATIONS.lines() {
            if let Some(name) = line.strip_prefix("=== ") {
                if found.is_some() {
                    break;
                }
                if name == self.as_str() {
                    found = Some(Explanation::default());
                }
                continue;
            }
            let Some(explanation) = found.as_mut() else { continue };
            if let Some(header) = line.strip_prefix("--- ") {
                let mut words = header.split_whitespace().map(str::to_owned);
                let role = words.next().unwrap_or_default();
                let kind = if role == "runbook" { role.clone() } else { words.next().unwrap_or_default() };
                explanation.examples.push(Example { role, kind, arguments: words.collect(), text: String::new() });
            } else if let Some(example) = explanation.examples.last_mut() {
                if !line.is_empty() {
                    example.text.push_str(line);
                    example.text.push('\n');
                }
            } else if !line.trim().is_empty() {
                if !explanation.paragraph.is_empty() {
                    explanation.paragraph.push(' ');
                }
                explanation.paragraph.push_str(line.trim());
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suggestion_needs_a_name_of_plausible_length() {
        let names = ["DescribeInstances", "DescribeImages"];
        assert_eq!(nearest("DescribeInstancesX", names.into_iter()), Some("DescribeInstances"));
        // 100,000 characters once took 15 s of edit distances; now no candidate is measured.
        assert_eq!(nearest(&"D".repeat(100_000), names.into_iter()), None);
        // Past the cap no candidate is measured, however close.
        let long = "A".repeat(300);
        let typo = format!("{}B", "A".repeat(299));
        assert_eq!(nearest(&typo, [long.as_str()].into_iter()), None);
        assert_eq!(nearest(&typo[..200], [&long[..201]].into_iter()), Some(&long[..201]));
    }

    /// The counts of characters never claim more edits than there are: names changed by up
    /// to six edits (characters of several bytes, and ones that share a bin, among them).
    #[test]
    fn counted_characters_bound_the_edit_distance_from_below() {
        let alphabet: Vec<char> = "abcdefghijklmnopqrstuvwxyzABZ019-_.é€\u{1}A!a".chars().collect();
        let mut seed = 0x853C_49E6_748F_EA9B_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 33) as usize % n
        };
        for _ in 0..3_000 {
            let name: Vec<char> = (0..next(20)).map(|_| alphabet[next(alphabet.len())]).collect();
            let mut other = name.clone();
            for _ in 0..next(7) {
                let at = next(other.len() + 1);
                match next(3) {
                    0 => other.insert(at, alphabet[next(alphabet.len())]),
                    1 if at < other.len() => other[at] = alphabet[next(alphabet.len())],
                    _ if at < other.len() => drop(other.remove(at)),
                    _ => {}
                }
            }
            let lower: Vec<char> = name.iter().map(char::to_ascii_lowercase).collect();
            let other: String = other.into_iter().collect();
            let edits = EditDistance::default().within(&lower, &other, usize::MAX).unwrap();
            let bound =
                CharCounts::of(lower.iter().copied()).edits_at_least(other.chars().map(|c| c.to_ascii_lowercase()));
            assert!(bound <= edits, "{lower:?} to {other:?}: {bound} > {edits}");
        }
    }
}
