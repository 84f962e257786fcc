//! `kiln keygen`, `kiln sign` and `kiln verify-signature`: ECDSA P-256 key pairs in PEM, and
//! cosign-style signatures of a layout's image indexes and platform manifests.

use super::Failure;
use kiln::attest::keys::{KeyError, PrivateKey, PublicKey};
use kiln::error::BuildError;
use kiln::inputs::registry::Release;
use miette::Diagnostic;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `kiln sign`'s arguments.
#[derive(clap::Args)]
pub(crate) struct SignArgs {
    /// The OCI layout, or a registry image (HOST/REPOSITORY:TAG or @sha256:…) whose
    /// signatures are pushed beside it.
    #[arg(value_name = "LAYOUT|REF")]
    target: String,
    /// The private key (PEM: PKCS#8 as openssl genpkey or kiln keygen write it, or SEC1).
    #[arg(long, value_name = "KEY.pem")]
    key: PathBuf,
    /// Only this image (of a layout).
    #[arg(long)]
    image: Option<String>,
    /// Print what was signed as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: super::push::RegistryArgs,
}

/// `kiln verify-signature`'s arguments.
#[derive(clap::Args)]
pub(crate) struct CheckArgs {
    /// The OCI layout, or a registry image (its referrers are read from the registry).
    #[arg(value_name = "LAYOUT|REF")]
    target: String,
    /// The public key (PEM, PUBLIC KEY).
    #[arg(long, value_name = "PUB.pem")]
    key: PathBuf,
    /// Only this image (of a layout).
    #[arg(long)]
    image: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: super::push::RegistryArgs,
}

/// The most of a key file kiln reads: PEM keys are a few hundred bytes.
const MAX_KEY_FILE: u64 = 64 << 10;

/// A key file kiln cannot use, named, with the key error's code and help.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{}: {source}", path.display())]
#[diagnostic(forward(source))]
pub(crate) struct KeyFileError {
    path: PathBuf,
    source: KeyError,
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub(crate) enum SignCliError {
    #[error("{} exists already", .0.display())]
    #[diagnostic(
        code(kiln::cli::output),
        help("kiln keygen does not replace a key; pass another --out, or remove the old pair")
    )]
    Exists(PathBuf),
    #[error("{} is over 64 KiB: not a PEM key", .0.display())]
    #[diagnostic(code(kiln::attest::key), help("pass the PEM file openssl or kiln keygen wrote"))]
    TooLarge(PathBuf),
}

fn read_key_file(path: &Path) -> Result<String, Failure> {
    let f = std::fs::File::open(path).map_err(BuildError::io("read", path))?;
    let mut text = String::new();
    f.take(MAX_KEY_FILE + 1).read_to_string(&mut text).map_err(BuildError::io("read", path))?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(SignCliError::TooLarge(path.to_path_buf()).into());
    }
    Ok(text)
}

pub(crate) fn private_key(path: &Path) -> Result<PrivateKey, Failure> {
    let text = read_key_file(path)?;
    PrivateKey::from_pem(&text).map_err(|source| KeyFileError { path: path.to_path_buf(), source }.into())
}

pub(crate) fn public_key(path: &Path) -> Result<PublicKey, Failure> {
    let text = read_key_file(path)?;
    PublicKey::from_pem(&text).map_err(|source| KeyFileError { path: path.to_path_buf(), source }.into())
}

/// Writes `text` to the new file `path` with `mode`, through a file beside it renamed into
/// place: the key is never readable by others, even for a moment, and never half-written.
fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), Failure> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".kiln-staging-key-")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(BuildError::io("create a file in", dir))?;
    tmp.write_all(text.as_bytes()).map_err(BuildError::io("write", tmp.path()))?;
    tmp.as_file().sync_all().map_err(BuildError::io("write", tmp.path()))?;
    tmp.persist_noclobber(path).map_err(|e| match e.error.kind() {
        std::io::ErrorKind::AlreadyExists => Failure::from(SignCliError::Exists(path.to_path_buf())),
        _ => BuildError::io("write", path)(e.error).into(),
    })?;
    Ok(())
}

pub(crate) fn run_keygen(out: &str, quiet: bool) -> Result<ExitCode, Failure> {
    let (private_path, public_path) = (PathBuf::from(format!("{out}.key")), PathBuf::from(format!("{out}.pub")));
    for p in [&private_path, &public_path] {
        if p.exists() {
            return Err(SignCliError::Exists(p.clone()).into());
        }
    }
    let (private, public) = kiln::attest::keys::generate()?;
    write_new(&public_path, &public, 0o644)?;
    write_new(&private_path, &private, 0o600)?;
    if !quiet {
        let id = PublicKey::from_pem(&public)?.key_id();
        println!("wrote {} (private, mode 0600) and {} (public)", private_path.display(), public_path.display());
        println!("key id {id}");
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run_sign(args: &SignArgs) -> Result<ExitCode, Failure> {
    let SignArgs { target, key, image, json, registry } = args;
    let (image, json) = (image.as_deref(), *json);
    let key = private_key(key)?;
    let summary = match Release::parse(target) {
        Release::Layout(dir) => kiln::attest::signing::sign_layout(&dir, &key, image).map_err(BuildError::from)?,
        Release::Registry(r) => kiln::publish::registry::sign_reference(&r, &registry.options()?, &key)?,
    };
    if json {
        print!("{}", kiln::oci::canonical::to_pretty(&summary));
        return Ok(ExitCode::SUCCESS);
    }
    for s in &summary.signed {
        println!("signed {} {} {}", s.image, s.what, s.digest);
    }
    println!("key id {}; {} signature(s) added to {target}", summary.key_id, summary.added);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run_check(args: &CheckArgs) -> Result<ExitCode, Failure> {
    let CheckArgs { target, key, image, json, registry } = args;
    let (image, json) = (image.as_deref(), *json);
    let key = public_key(key)?;
    let checked = match Release::parse(target) {
        Release::Layout(dir) => kiln::attest::signing::check_layout(&dir, &key, image).map_err(BuildError::from)?,
        Release::Registry(r) => kiln::publish::registry::check_reference(&r, &registry.options()?, &key)?,
    };
    let all = checked.iter().all(|c| c.status == kiln::attest::signing::Status::Signed);
    if json {
        let v = serde_json::json!({"key_id": key.key_id(), "all_signed": all, "subjects": checked});
        print!("{}", kiln::oci::canonical::to_pretty(&v));
    } else {
        for c in &checked {
            let status = match &c.status {
                kiln::attest::signing::Status::Signed => "signed".to_string(),
                kiln::attest::signing::Status::Unsigned => "NOT SIGNED".to_string(),
                kiln::attest::signing::Status::Invalid(why) => format!("BAD SIGNATURE: {why}"),
            };
            println!("{} {} {}: {status}", c.subject.image, c.subject.what, c.subject.digest);
        }
        println!(
            "{}",
            if all {
                "every image index and manifest is signed by this key"
            } else {
                "not everything is signed by this key"
            }
        );
    }
    Ok(if all { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
