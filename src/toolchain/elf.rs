//! Checks on every binary before it is layered: the right machine and class for the platform,
//! statically linked where the base has no libc, and nothing left of its symbol table or debug
//! information.

use crate::oci::platform::Platform;
use object::read::elf::{ElfFile32, ElfFile64, FileHeader, ProgramHeader};
use object::{Architecture, Object, ObjectSection};

/// What the check found, for the build summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfFacts {
    pub architecture: Architecture,
    pub is_64: bool,
    pub is_static: bool,
    pub symtab: bool,
    pub debug_sections: Vec<String>,
}

fn expected(p: Platform) -> (Architecture, bool) {
    match p {
        Platform::LinuxAmd64 => (Architecture::X86_64, true),
        Platform::LinuxArm64 => (Architecture::Aarch64, true),
        Platform::LinuxArmV7 => (Architecture::Arm, false),
    }
}

fn has_interp<H: FileHeader<Endian = object::Endianness>>(elf: &object::read::elf::ElfFile<'_, H>) -> bool {
    let endian = elf.endian();
    elf.elf_program_headers().iter().any(|ph| ph.p_type(endian) == object::elf::PT_INTERP)
}

/// Reads the facts of an ELF file.
pub fn facts(data: &[u8]) -> Result<ElfFacts, String> {
    let file = object::File::parse(data).map_err(|e| format!("not an ELF executable: {e}"))?;
    if file.format() != object::BinaryFormat::Elf {
        return Err(format!("not an ELF executable ({:?})", file.format()));
    }
    let is_static = if file.is_64() {
        !has_interp(&ElfFile64::<object::Endianness>::parse(data).map_err(|e| e.to_string())?)
    } else {
        !has_interp(&ElfFile32::<object::Endianness>::parse(data).map_err(|e| e.to_string())?)
    };
    let mut debug_sections = Vec::new();
    let mut symtab = false;
    for s in file.sections() {
        let name = s.name().unwrap_or_default();
        if name == ".symtab" {
            symtab = true;
        }
        if name.starts_with(".debug") || name.starts_with(".zdebug") {
            debug_sections.push(name.to_string());
        }
    }
    Ok(ElfFacts { architecture: file.architecture(), is_64: file.is_64(), is_static, symtab, debug_sections })
}

/// Checks a stripped binary for `platform`; the error says what is wrong.
pub fn check(data: &[u8], platform: Platform, require_static: bool) -> Result<ElfFacts, String> {
    let f = facts(data)?;
    let (arch, is_64) = expected(platform);
    if f.architecture != arch || f.is_64 != is_64 {
        return Err(format!(
            "built for {:?} ({}-bit), but {platform} needs {arch:?} ({}-bit)",
            f.architecture,
            if f.is_64 { 64 } else { 32 },
            if is_64 { 64 } else { 32 }
        ));
    }
    if require_static && !f.is_static {
        return Err(format!("dynamically linked, but a scratch image for {platform} has no libc to load it"));
    }
    if f.symtab {
        return Err("still has a symbol table (.symtab) after stripping".into());
    }
    if !f.debug_sections.is_empty() {
        return Err(format!("still has debug sections after stripping: {}", f.debug_sections.join(", ")));
    }
    Ok(f)
}
