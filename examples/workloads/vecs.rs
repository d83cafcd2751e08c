// A Rust program with a known allocation profile: N vectors of 100,000
// bytes (malloc), each grown to 200,001 (realloc), then dropped (free).
// (no std::hint::black_box: Debian 12's rustc 1.63 predates it)
fn main() {
    let n: usize = std::env::args().nth(1).expect("N").parse().expect("a number");
    let mut total = 0;
    for _ in 0..n {
        let mut v: Vec<u8> = Vec::with_capacity(100_000);
        v.push(1);
        v.reserve_exact(200_000);
        // A volatile read of the grown buffer: the allocations must then really happen
        // (LLVM removes a malloc/free pair whose memory nothing reads).
        total += v.capacity() + unsafe { std::ptr::read_volatile(v.as_ptr()) } as usize;
    }
    // Used, so the loop is not optimised away; on stderr, away from the tracer's stdout.
    eprintln!("capacity {}", total);
}
