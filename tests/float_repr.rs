//! `pyjson::float_repr` against Python's own `repr(float)` on hundreds of
//! thousands of doubles: random bit patterns, rounding ties, subnormals,
//! powers of two and their neighbours, large exponents. Python 3 is a
//! prerequisite of perfwarden (it fetches the model), so its absence fails.

use std::io::Write;
use std::process::{Command, Stdio};

use perfwarden::chat::pyjson::float_repr;
use perfwarden::splitmix::SplitMix64;

fn doubles() -> Vec<f64> {
    let mut rng = SplitMix64::new(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::new();
    // Any bit pattern.
    for _ in 0..200_000 {
        out.push(f64::from_bits(rng.next_u64()));
    }
    // Large numbers with short fractions, where two shortest spellings can be
    // equally near (1000000000000000.2 is ...0.25 exactly).
    for _ in 0..100_000 {
        let whole = rng.next_u64() % 9_000_000_000_000_000 + 1_000_000_000_000;
        let fraction = rng.next_u64() % 1000;
        let digits = match rng.next_u64() % 3 {
            0 => format!("{whole}.{}", fraction % 10),
            1 => format!("{whole}.{:02}", fraction % 100),
            _ => format!("{whole}.{fraction:03}"),
        };
        out.push(digits.parse().unwrap());
    }
    // Exact binary ties: integers plus a power-of-two fraction near 2^53.
    for _ in 0..50_000 {
        let whole = (rng.next_u64() % (1 << 53)) as f64;
        let fraction = [0.5, 0.25, 0.75, 0.125, 0.375, 0.625][(rng.next_u64() % 6) as usize];
        out.push(whole + fraction);
    }
    // Subnormals and the smallest normals.
    for _ in 0..30_000 {
        out.push(f64::from_bits(rng.next_u64() % (1 << 53)));
    }
    // Large exponents.
    for _ in 0..30_000 {
        out.push(f64::from_bits(
            (0x7E0 + rng.next_u64() % 0x1F) << 52 | rng.next_u64() >> 12,
        ));
    }
    // Every power of two and its neighbours.
    for exponent in -1074..=1023 {
        let power = 2f64.powi(exponent);
        out.extend([power, power.next_up(), power.next_down()]);
    }
    out.retain(|f| f.is_finite() && *f != 0.0);
    out.extend(out.clone().iter().map(|f| -f).take(20_000));
    out
}

#[test]
fn float_repr_matches_python_on_400k_doubles() {
    let values = doubles();
    assert!(values.len() > 400_000, "{} doubles", values.len());
    let mut python = Command::new("python3")
        .args([
            "-I",
            "-c",
            "import sys, struct\n\
             out = [repr(struct.unpack('<d', bytes.fromhex(line))[0]) for line in sys.stdin.read().split()]\n\
             sys.stdout.write('\\n'.join(out))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 must be installed (perfwarden's prerequisites)");
    let mut input = String::with_capacity(values.len() * 17);
    for value in &values {
        for byte in value.to_le_bytes() {
            input.push_str(&format!("{byte:02x}"));
        }
        input.push('\n');
    }
    python
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = python.wait_with_output().unwrap();
    assert!(output.status.success(), "python3 failed");
    let expected = String::from_utf8(output.stdout).unwrap();
    let expected: Vec<&str> = expected.lines().collect();
    assert_eq!(expected.len(), values.len());
    let mismatches: Vec<String> = values
        .iter()
        .zip(&expected)
        .filter(|(value, python)| float_repr(**value) != **python)
        .take(20)
        .map(|(value, python)| {
            format!(
                "{:#018x}: perfwarden {} python {python}",
                value.to_bits(),
                float_repr(*value)
            )
        })
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
