//! The memory and time budget of one expression evaluation. minijinja bounds instructions
//! (fuel) but not what one instruction allocates: `[1] * 100000000` built 3 GB. So the
//! compiled instructions are rewritten before they run:
//!
//! - repetition (`*`) calls [`repeat`], which refuses a result past the value budget before
//!   building it;
//! - every instruction that can build a new value is followed by a call of [`measure`], which
//!   weighs the value on top of the stack: one value may weigh [`MAX_VALUE_WEIGHT`], all the
//!   values one evaluation builds [`MAX_BUILT_WEIGHT`];
//! - the filters whose result can outgrow their input (`join`, `replace`, and those that
//!   explode a string into one value per character) weigh their result before building it; the ones that only pad or fill (`indent`, `batch`, `slice`,
//!   `format`, `pprint`) are not offered.
//!
//! minijinja also folds constants while it compiles (`[1] * 100000000` is built by the
//! compiler, not the program), so every constant part of the syntax tree is weighed first
//! ([`folded`]) and an expression whose constants would outgrow the budget never compiles.
//!
//! Names the rewriting calls contain a colon, so an expression cannot call them itself.

use std::cell::Cell;
use std::sync::OnceLock;

use minijinja::machinery::ast::{BinOpKind, CallArg, Expr};
use minijinja::machinery::{CodeGenerator, Instruction, Instructions, parse_expr};
use minijinja::value::{Rest, Value, ValueKind, ValueOrKwargs};
use minijinja::{Environment, Error, ErrorKind, State};

/// What one value an expression builds may weigh, in bytes (text, plus 32 per value).
pub const MAX_VALUE_WEIGHT: usize = 4 << 20;
/// What all the values one evaluation builds may weigh together.
pub const MAX_BUILT_WEIGHT: usize = 32 << 20;
/// Instructions one evaluation may execute (minijinja's fuel).
pub const MAX_FUEL: u64 = 100_000;
/// The weight of one value besides its text: what minijinja keeps for it.
const VALUE_WEIGHT: usize = 32;

const REPEAT: &str = "budget:repeat";
const MEASURE: &str = "budget:measure";

thread_local! {
    /// What the evaluation running on this thread has built so far.
    static BUILT: Cell<usize> = const { Cell::new(0) };
}

/// Starts counting for a new evaluation on this thread.
pub fn start() {
    BUILT.with(|built| built.set(0));
}

fn refused(what: &str) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!(
            "{what} (expression budget: one value {} MiB, all values {} MiB)",
            MAX_VALUE_WEIGHT >> 20,
            MAX_BUILT_WEIGHT >> 20
        ),
    )
}

/// Charges `weight` to the evaluation, or refuses it.
fn charge(weight: usize, what: &str) -> Result<(), Error> {
    if weight > MAX_VALUE_WEIGHT {
        return Err(refused(&format!("{what} would weigh more than {} MiB", MAX_VALUE_WEIGHT >> 20)));
    }
    BUILT.with(|built| {
        let total = built.get().saturating_add(weight);
        built.set(total);
        if total > MAX_BUILT_WEIGHT {
            Err(refused(&format!("the expression built more than {} MiB of values", MAX_BUILT_WEIGHT >> 20)))
        } else {
            Ok(())
        }
    })
}

/// What `value` weighs, counting no further than `limit` (so weighing is bounded too).
pub fn weigh(value: &Value, limit: usize) -> usize {
    let mut total = 0usize;
    let mut pending = vec![value.clone()];
    while let Some(value) = pending.pop() {
        total = total.saturating_add(VALUE_WEIGHT);
        match value.kind() {
            ValueKind::String | ValueKind::Bytes => total = total.saturating_add(value.as_str().map_or(0, str::len)),
            ValueKind::Seq | ValueKind::Iterable | ValueKind::Map => {
                let Ok(items) = value.try_iter() else { continue };
                for item in items {
                    if total > limit {
                        return total;
                    }
                    if value.kind() == ValueKind::Map {
                        pending.push(value.get_item(&item).unwrap_or_default());
                    }
                    pending.push(item);
                }
            }
            _ => {}
        }
        if total > limit {
            return total;
        }
    }
    total
}

/// The text length of a string argument, or of the strings in a list argument: what a filter
/// that explodes strings into one value per character could build from it.
fn characters(value: &Value) -> usize {
    match value.as_str() {
        Some(text) => text.len(),
        None => 0,
    }
}

/// `a * b`: numbers multiply as minijinja does; a string or sequence repeated is weighed
/// before it is built.
fn repeat(a: Value, b: Value) -> Result<Value, Error> {
    let (items, times) = match (a.kind(), b.kind()) {
        (ValueKind::String | ValueKind::Seq | ValueKind::Iterable, ValueKind::Number) => (&a, &b),
        (ValueKind::Number, ValueKind::String | ValueKind::Seq | ValueKind::Iterable) => (&b, &a),
        _ => return multiply(a, b),
    };
    let times = usize::try_from(times.clone()).unwrap_or(0);
    // A string repeats its text; a sequence repeats its values.
    let one = items.as_str().map_or_else(|| weigh(items, MAX_VALUE_WEIGHT), str::len);
    charge(one.saturating_mul(times), "a repetition")?;
    multiply(a, b)
}

/// minijinja's own `*`, from an environment without the rewriting.
fn multiply(a: Value, b: Value) -> Result<Value, Error> {
    static PLAIN: OnceLock<Environment<'static>> = OnceLock::new();
    let plain = PLAIN.get_or_init(Environment::empty);
    plain.compile_expression("a * b")?.eval(minijinja::context! { a, b })
}

fn measure(value: Value) -> Result<Value, Error> {
    let weight = weigh(&value, MAX_VALUE_WEIGHT);
    charge(weight, "a value")?;
    Ok(value)
}

/// Filters that can build far more than they are given, with what they would build.
fn estimate(filter: &str, args: &[Value]) -> Result<usize, Error> {
    let value = args.first().cloned().unwrap_or_default();
    let text = |at: usize| args.get(at).and_then(Value::as_str).map_or(0, str::len);
    Ok(match filter {
        "join" => {
            let count = value.len().unwrap_or_else(|| characters(&value));
            weigh(&value, MAX_VALUE_WEIGHT).saturating_add(count.saturating_mul(text(1)))
        }
        "replace" => {
            let source = value.as_str().unwrap_or_default();
            let from = args.get(1).and_then(Value::as_str).unwrap_or_default();
            let count = if from.is_empty() { source.len() + 1 } else { source.matches(from).count() };
            source.len().saturating_add(count.saturating_mul(text(2)))
        }
        _ => characters(&value).saturating_mul(VALUE_WEIGHT),
    })
}

/// Filters minijinja offers that build values, each wrapped so it is weighed before it runs.
fn checked_filters() -> [(&'static str, Value); 18] {
    use minijinja::filters::*;
    [
        ("join", Value::from_function(join)),
        ("replace", Value::from_function(replace)),
        ("list", Value::from_function(list)),
        ("unique", Value::from_function(unique)),
        ("sort", Value::from_function(sort)),
        ("map", Value::from_function(map)),
        ("select", Value::from_function(select)),
        ("reject", Value::from_function(reject)),
        ("selectattr", Value::from_function(selectattr)),
        ("rejectattr", Value::from_function(rejectattr)),
        ("groupby", Value::from_function(groupby)),
        ("chain", Value::from_function(chain)),
        ("zip", Value::from_function(zip)),
        ("split", Value::from_function(split)),
        ("lines", Value::from_function(lines)),
        ("reverse", Value::from_function(reverse)),
        ("items", Value::from_function(items)),
        ("dictsort", Value::from_function(dictsort)),
    ]
}
/// Filters that only pad or fill: not offered in expressions.
const WITHHELD_FILTERS: &[&str] = &["indent", "batch", "slice", "format", "pprint"];

/// Sets the budget on `environment`.
pub fn install(environment: &mut Environment<'static>) {
    environment.set_fuel(Some(MAX_FUEL));
    for name in WITHHELD_FILTERS {
        environment.remove_filter(name);
    }
    for (name, filter) in checked_filters() {
        environment.add_filter(name, move |state: &mut State, args: Rest<ValueOrKwargs>| -> Result<Value, Error> {
            let args = args.into_values();
            charge(estimate(name, &args)?, &format!("the result of `{name}`"))?;
            filter.call(state, &args)
        });
    }
    environment.add_function(REPEAT, repeat);
    environment.add_function(MEASURE, measure);
}

/// Whether running `instruction` can leave a new value on the stack (looking a name or an
/// attribute up does not: the value is shared).
fn builds(instruction: &Instruction<'_>) -> bool {
    matches!(
        instruction,
        Instruction::Slice
            | Instruction::Add
            | Instruction::Sub
            | Instruction::Mul
            | Instruction::StringConcat
            | Instruction::BuildList(_)
            | Instruction::BuildTuple(_)
            | Instruction::BuildMap(_)
            | Instruction::ApplyFilter(..)
            | Instruction::CallFunction(..)
            | Instruction::CallMethod(..)
            | Instruction::CallObject(_)
    )
}

/// What a constant part of an expression folds to, weighed without building it.
#[derive(Clone, Copy, PartialEq)]
enum Folded {
    Number,
    /// A string, and its length.
    Text(usize),
    /// A string, list, tuple or map, and its weight.
    Data(usize),
    /// Anything else (true, none, ...).
    Small,
}

impl Folded {
    fn is_data(self) -> bool {
        matches!(self, Folded::Text(_) | Folded::Data(_))
    }

    fn weight(self) -> usize {
        match self {
            Folded::Data(weight) => weight,
            Folded::Text(length) => length.saturating_add(VALUE_WEIGHT),
            Folded::Number | Folded::Small => VALUE_WEIGHT,
        }
    }
}

fn fold_value(value: &Value) -> Folded {
    match value.kind() {
        ValueKind::Number => Folded::Number,
        ValueKind::String => Folded::Text(value.as_str().map_or(0, str::len)),
        ValueKind::Bytes | ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => {
            Folded::Data(weigh(value, MAX_VALUE_WEIGHT))
        }
        _ => Folded::Small,
    }
}

/// What `items`, all constant, fold to (None when one is not constant).
fn fold_all<'e>(items: impl IntoIterator<Item = &'e Expr<'e>>) -> Result<Option<usize>, Error> {
    let mut total = VALUE_WEIGHT;
    for item in items {
        match folded(item)? {
            Some(part) => total = total.saturating_add(part.weight()),
            None => return Ok(None),
        }
    }
    Ok(Some(total))
}

/// What `expr` folds to when it is constant, refusing what would outgrow the budget. The
/// compiler folds the constant parts of a non-constant expression too: their weight is
/// charged as it is found.
fn folded(expr: &Expr<'_>) -> Result<Option<Folded>, Error> {
    let result = match expr {
        Expr::Const(constant) => Some(fold_value(&constant.value)),
        Expr::List(list) => fold_all(&list.items)?.map(Folded::Data),
        Expr::Tuple(tuple) => fold_all(&tuple.items)?.map(Folded::Data),
        Expr::Map(map) => fold_all(map.keys.iter().chain(&map.values))?.map(Folded::Data),
        Expr::UnaryOp(unary) => folded(&unary.expr)?.map(|_| Folded::Number),
        Expr::Compare(compare) => {
            fold_all(std::iter::once(&compare.expr).chain(compare.ops.iter().map(|op| &op.expr)))?
                .map(|_| Folded::Small)
        }
        Expr::BinOp(binary) => {
            let (left, right) = (folded(&binary.left)?, folded(&binary.right)?);
            let (Some(left), Some(right)) = (left, right) else {
                for side in [(left, &binary.left), (right, &binary.right)] {
                    if let (Some(part), _) = side {
                        charge(part.weight(), "a constant")?;
                    }
                }
                return Ok(None);
            };
            // A repetition's count may itself be a constant expression (`'x' * (10 ** 8)`):
            // whatever is not text or data on the other side is the count.
            let result = match (binary.op, left, right) {
                (BinOpKind::Mul, Folded::Text(length), other) if !other.is_data() => {
                    Folded::Text(length.saturating_mul(count(&binary.right)))
                }
                (BinOpKind::Mul, other, Folded::Text(length)) if !other.is_data() => {
                    Folded::Text(length.saturating_mul(count(&binary.left)))
                }
                (BinOpKind::Mul, Folded::Data(weight), other) if !other.is_data() => {
                    Folded::Data(weight.saturating_mul(count(&binary.right)))
                }
                (BinOpKind::Mul, other, Folded::Data(weight)) if !other.is_data() => {
                    Folded::Data(weight.saturating_mul(count(&binary.left)))
                }
                (
                    BinOpKind::Add
                    | BinOpKind::Sub
                    | BinOpKind::Mul
                    | BinOpKind::Div
                    | BinOpKind::FloorDiv
                    | BinOpKind::Rem
                    | BinOpKind::Pow,
                    Folded::Number,
                    Folded::Number,
                ) => Folded::Number,
                // Joining: each side as text is no longer than its weight.
                (BinOpKind::Add | BinOpKind::Concat | BinOpKind::ScAnd | BinOpKind::ScOr, ..) => {
                    Folded::Data(left.weight().saturating_add(right.weight()))
                }
                _ => Folded::Small,
            };
            if result.weight() > MAX_VALUE_WEIGHT {
                return Err(refused(&format!("a constant would weigh more than {} MiB", MAX_VALUE_WEIGHT >> 20)));
            }
            Some(result)
        }
        other => {
            for child in children(other) {
                if let Some(part) = folded(child)? {
                    charge(part.weight(), "a constant")?;
                }
            }
            None
        }
    };
    Ok(result)
}

/// The repetition count of a constant number (already weighed, so folding it is cheap).
fn count(expr: &Expr<'_>) -> usize {
    expr.as_const().and_then(|value| usize::try_from(value).ok()).unwrap_or(0)
}

/// The sub-expressions of a node that is never constant.
fn children<'e>(expr: &'e Expr<'e>) -> Vec<&'e Expr<'e>> {
    let arguments = |args: &'e [CallArg<'e>]| {
        args.iter().map(|arg| match arg {
            CallArg::Pos(e) | CallArg::Kwarg(_, e) | CallArg::PosSplat(e) | CallArg::KwargSplat(e) => e,
        })
    };
    match expr {
        Expr::Slice(slice) => std::iter::once(&slice.expr)
            .chain(slice.start.iter())
            .chain(slice.stop.iter())
            .chain(slice.step.iter())
            .collect(),
        Expr::IfExpr(test) => [&test.test_expr, &test.true_expr].into_iter().chain(test.false_expr.iter()).collect(),
        Expr::Filter(filter) => filter.expr.iter().chain(arguments(&filter.args)).collect(),
        Expr::Test(test) => std::iter::once(&test.expr).chain(arguments(&test.args)).collect(),
        Expr::GetAttr(attribute) => vec![&attribute.expr],
        Expr::GetItem(item) => vec![&item.expr, &item.subscript_expr],
        Expr::Call(call) => std::iter::once(&call.expr).chain(arguments(&call.args)).collect(),
        _ => Vec::new(),
    }
}

/// The instructions of `source`, with repetition and measuring rewritten in.
pub fn compile(source: &str) -> Result<Instructions<'_>, Error> {
    let ast = parse_expr(source)?;
    start();
    if let Some(part) = folded(&ast)? {
        charge(part.weight(), "the expression")?;
    }
    let mut generator = CodeGenerator::new("<expression>", source);
    generator.compile_expr(&ast);
    let (original, _) = generator.finish();
    let mut listed = Vec::new();
    while let Some(instruction) = original.get(listed.len() as u32) {
        listed.push(instruction.clone());
    }
    // Where each original instruction lands, for the jumps.
    let mut position = Vec::with_capacity(listed.len() + 1);
    let mut next = 0u32;
    for instruction in &listed {
        position.push(next);
        next += if builds(instruction) { 2 } else { 1 };
    }
    position.push(next);
    let target = |at: u32| position.get(at as usize).copied().unwrap_or(next);
    let mut rewritten = Instructions::new("<expression>", source);
    for instruction in listed {
        let built = builds(&instruction);
        rewritten.add(match instruction {
            Instruction::Mul => Instruction::CallFunction(REPEAT, Some(2)),
            Instruction::Jump(at) => Instruction::Jump(target(at)),
            Instruction::JumpIfFalse(at) => Instruction::JumpIfFalse(target(at)),
            Instruction::JumpIfFalseOrPop(at) => Instruction::JumpIfFalseOrPop(target(at)),
            Instruction::JumpIfTrueOrPop(at) => Instruction::JumpIfTrueOrPop(target(at)),
            Instruction::Iterate(at) => Instruction::Iterate(target(at)),
            other => other,
        });
        if built {
            rewritten.add(Instruction::CallFunction(MEASURE, Some(1)));
        }
    }
    Ok(rewritten)
}
