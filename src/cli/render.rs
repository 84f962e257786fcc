//! Errors rendered for a person: miette's graphical report, in ASCII without colour when stderr
//! is not a terminal, each cause said once.

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, ThemeCharacters, ThemeStyles};
use std::io::IsTerminal;

/// Whether the message already states every cause in the error's chain. kiln's messages do
/// (`cannot read kiln.kdl: No such file or directory (os error 2)`), and thiserror still makes a
/// field named `source` the cause, which miette would print a second time under the message.
fn states_its_causes(d: &dyn Diagnostic) -> bool {
    let message = d.to_string();
    std::iter::successors(d.source(), |e| e.source()).all(|cause| message.contains(&cause.to_string()))
}

pub(crate) fn render(d: &dyn Diagnostic) -> String {
    let theme = if std::io::stderr().is_terminal() {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme { characters: ThemeCharacters::ascii(), styles: ThemeStyles::none() }
    };
    let mut handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    if states_its_causes(d) {
        // A cause the message does not state is still printed, below it.
        handler = handler.without_cause_chain();
    }
    let mut out = String::new();
    if handler.render_report(&mut out, d).is_err() {
        out = format!("error: {d}");
    }
    out
}
