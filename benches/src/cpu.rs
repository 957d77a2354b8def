//! CPU time read from /proc: one process's, and all of Postgres's, so a
//! benchmark can put CPU per event or per request beside its rates.

/// CPU seconds (user and system) process `pid` has used, from /proc.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// CPU seconds all of Postgres's processes have used.
pub fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "postgres")
        })
        .filter_map(cpu_seconds)
        .sum()
}

/// `seconds` of CPU spread over `count` operations, in milliseconds each;
/// "—" when the reading went backwards (a process that was counted at the
/// start exited meanwhile, taking its CPU out of the sum).
pub fn ms_each(seconds: f64, count: u64) -> String {
    if seconds < 0.0 {
        return "—".to_owned();
    }
    format!("{:.3}", seconds * 1000.0 / count.max(1) as f64)
}
