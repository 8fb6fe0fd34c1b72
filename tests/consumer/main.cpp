// d/dx sum(x * x) = 2 x, through the installed headers and library.
#include <tapegrad/tapegrad.hpp>

#include <iostream>

int main() {
  tg::Tensor x = tg::from_vector({1, 2, 3}, {3});
  x.set_requires_grad();
  tg::Tape tape;
  tg::TapeGuard recording(tape);
  tg::sum(x * x).backward();
  const auto& g = x.grad_data<float>();
  const bool ok = g(0) == 2 && g(1) == 4 && g(2) == 6;
  std::cout << (ok ? "consumer: ok" : "consumer: wrong gradient") << "\n";
  return ok ? 0 : 1;
}
