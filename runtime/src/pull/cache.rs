//! Where pulled models live: `$EMBER_MODELS`, else `$XDG_CACHE_HOME/ember/models`, else
//! `$HOME/.cache/ember/models`.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::{Error, Result};

/// The models cache directory (not created here).
pub fn models_dir() -> Result<PathBuf> {
    let var = |k: &str| std::env::var_os(k);
    models_dir_from(var("EMBER_MODELS"), var("XDG_CACHE_HOME"), var("HOME")).ok_or_else(|| {
        Error::InvalidArgument(
            "no models directory: set EMBER_MODELS (or HOME) to say where models go".into(),
        )
    })
}

/// The rule, apart from the environment. Empty values count as unset; a relative
/// `XDG_CACHE_HOME` is ignored, as the XDG spec says.
fn models_dir_from(
    ember_models: Option<OsString>,
    xdg_cache: Option<OsString>,
    home: Option<OsString>,
) -> Option<PathBuf> {
    let set = |v: Option<OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set(ember_models) {
        return Some(dir);
    }
    if let Some(xdg) = set(xdg_cache).filter(|p| p.is_absolute()) {
        return Some(xdg.join("ember").join("models"));
    }
    set(home).map(|h| h.join(".cache").join("ember").join("models"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(s.into())
    }

    #[test]
    fn precedence() {
        let dir = |a, b, c| models_dir_from(a, b, c).map(|p| p.display().to_string());
        assert_eq!(dir(os("/m"), os("/x"), os("/h")).as_deref(), Some("/m"));
        assert_eq!(
            dir(os(""), os("/x"), os("/h")).as_deref(),
            Some("/x/ember/models")
        );
        assert_eq!(
            dir(None, os("rel"), os("/h")).as_deref(),
            Some("/h/.cache/ember/models")
        );
        assert_eq!(dir(None, None, None), None);
    }
}
