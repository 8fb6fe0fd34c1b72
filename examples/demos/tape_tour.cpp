// A tour of the tape: records a small expression, prints the listing, runs backward, and
// writes the graph as Graphviz DOT.
//
//   build/examples/tape_tour [--dot out.dot]      (then: dot -Tsvg out.dot > tape.svg)
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>

#include "tapegrad.hpp"

int main(int argc, char** argv) {
  CLI::App app{"tape_tour: records a small expression, prints the tape, runs backward",
               "tape_tour"};
  std::string dot;
  app.add_option("--dot", dot, "write the graph as Graphviz DOT to this file");
  CLI11_PARSE(app, argc, argv);
  tg::Generator gen(0);
  tg::Tensor x = tg::randn({4, 3}, gen).set_name("x");  // data: no gradient wanted
  tg::Tensor w = tg::randn({3, 2}, gen).set_requires_grad().set_name("w");
  tg::Tensor b = tg::zeros({2}).set_requires_grad().set_name("b");

  tg::Tape tape;
  tg::TapeGuard recording(tape);
  tg::Tensor loss = tg::mean(tg::tanh(tg::matmul(x, w) + b) * 2.0);  // (4, 3) (3, 2) -> ()
  std::cout << "loss = mean(tanh(x w + b) * 2)\n\n" << tape << "\n";

  loss.backward();
  std::cout << "after backward (each op released its saved buffers):\n" << tape << "\n";
  std::cout << "d loss / d w = " << w.grad() << "\n\nd loss / d b = " << b.grad() << "\n";
  if (!dot.empty()) {
    std::ofstream out(dot);
    out << tape.to_dot();
    if (!out) {
      std::cerr << "tape_tour: cannot write " << dot << "\n";
      return 1;
    }
    std::cout << "wrote " << dot << "\n";
  }
  return 0;
}
