// Progress output with an injected clock: plain lines for logs (no '\r', a line per percent
// boundary or time interval), a throttled '\r' bar for terminals, and the formatting helpers.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "cyclone/core/progress.h"

namespace cyclone {
namespace {

// A tmpfile() to write to, and a clock the test moves by hand.
struct Capture {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file{std::tmpfile(), &std::fclose};
  double t = 1000.0;

  ProgressOptions options(int mode) {
    ProgressOptions o;
    o.out = file.get();
    o.mode = mode;
    o.now = [this] { return t; };
    return o;
  }
  std::string text() {
    std::fflush(file.get());
    std::rewind(file.get());
    std::string s;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, file.get())) > 0) s.append(buf, n);
    std::fseek(file.get(), 0, SEEK_END);
    return s;
  }
};

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  size_t at = 0;
  for (size_t nl; (nl = s.find('\n', at)) != std::string::npos; at = nl + 1)
    out.push_back(s.substr(at, nl - at));
  return out;
}

TEST(ProgressFormat, Duration) {
  EXPECT_EQ(format_duration(0), "0:00");
  EXPECT_EQ(format_duration(45), "0:45");
  EXPECT_EQ(format_duration(59.6), "1:00");
  EXPECT_EQ(format_duration(723), "12:03");
  EXPECT_EQ(format_duration(3723), "1:02:03");
  EXPECT_EQ(format_duration(100000), "27:46:40");
  EXPECT_EQ(format_duration(-1), "?");
  EXPECT_EQ(format_duration(1.0 / 0.0), "?");
}

TEST(ProgressFormat, Rate) {
  EXPECT_EQ(format_rate(0), "0");
  EXPECT_EQ(format_rate(0.512), "0.512");
  EXPECT_EQ(format_rate(3.14159), "3.14");
  EXPECT_EQ(format_rate(12.34), "12.3");
  EXPECT_EQ(format_rate(152.4), "152");
  EXPECT_EQ(format_rate(999.7), "1.00k");
  EXPECT_EQ(format_rate(1520), "1.52k");
  EXPECT_EQ(format_rate(15200), "15.2k");
  EXPECT_EQ(format_rate(152000), "152k");
  EXPECT_EQ(format_rate(2.5e6), "2.50M");
  EXPECT_EQ(format_rate(-1), "?");
}

// Messages say "1 step" and "1 epoch" ("stopped after 1 steps" read as a slip).
TEST(ProgressFormat, CountNoun) {
  EXPECT_EQ(count_noun(1, "step"), "1 step");
  EXPECT_EQ(count_noun(263, "step"), "263 steps");
  EXPECT_EQ(count_noun(0, "epoch"), "0 epochs");
}

TEST(ProgressBar, PlainLinesAtPercentBoundaries) {
  Capture cap;
  ProgressBar bar("epoch 1", 100, "img", cap.options(0));
  EXPECT_FALSE(bar.terminal());
  for (int done = 1; done <= 100; ++done) {
    cap.t += 0.125;  // 12.5 s in all: under plain_every_seconds, so only the boundaries print
    bar.update(done, done * 32, {{"loss", "0.4321"}, {"lr", "1.2e-3"}});
  }
  bar.finish("epoch 1 done: loss 0.4");
  const std::string out = cap.text();
  EXPECT_EQ(out.find('\r'), std::string::npos);
  EXPECT_EQ(out.find('\033'), std::string::npos);
  const auto ls = lines(out);
  ASSERT_EQ(ls.size(), 5u) << out;
  // 25 steps of 32 images in 3.125 s: 256 img/s, 75 steps left at 0.125 s each.
  EXPECT_EQ(ls[0], "epoch 1 25/100 (25%) loss 0.4321 lr 1.2e-3 | 256 img/s ETA 0:09");
  EXPECT_EQ(ls[1].rfind("epoch 1 50/100 (50%)", 0), 0u) << ls[1];
  EXPECT_EQ(ls[2].rfind("epoch 1 75/100 (75%)", 0), 0u) << ls[2];
  EXPECT_EQ(ls[3], "epoch 1 100/100 (100%) loss 0.4321 lr 1.2e-3 | 256 img/s ETA 0:00");
  EXPECT_EQ(ls[4], "epoch 1 done: loss 0.4");
}

TEST(ProgressBar, PlainLinesOnTimeInterval) {
  Capture cap;
  ProgressOptions o = cap.options(0);
  o.plain_every_percent = 0;  // time only
  ProgressBar bar("lr test", 1000, "batch", o);
  for (int done = 1; done <= 100; ++done) {
    cap.t += 1.0;
    bar.update(done, done, {});
  }
  const auto ls = lines(cap.text());
  ASSERT_EQ(ls.size(), 6u);  // at 15, 30, ..., 90 s
  EXPECT_EQ(ls[0], "lr test 15/1000 (1%) | 1.00 batch/s ETA 16:25");
}

TEST(ProgressBar, PlainUnknownTotal) {
  Capture cap;
  ProgressBar bar("eval", 0, "img", cap.options(0));
  cap.t += 20;
  bar.update(40, 400, {{"acc", "0.91"}});
  EXPECT_EQ(cap.text(), "eval 40 acc 0.91 | 20.0 img/s\n");
}

TEST(ProgressBar, TerminalRedrawsInPlaceAndThrottles) {
  Capture cap;
  ProgressOptions o = cap.options(1);
  o.min_redraw_seconds = 0.25;
  ProgressBar bar("epoch 2", 1875, "img", o);
  EXPECT_TRUE(bar.terminal());
  int64_t done = 0;
  for (int i = 0; i < 512; ++i) {
    cap.t += 0.0625;  // 16 updates a second, redrawn at most 4 times a second
    ++done;
    bar.update(done, done * 32, {{"loss", "0.4321"}, {"lr", "0.0012"}});
  }
  const std::string out = cap.text();
  EXPECT_EQ(out.find('\n'), std::string::npos);
  int redraws = 0;
  for (char c : out) redraws += c == '\r';
  EXPECT_EQ(redraws, 128);
  const std::string last = out.substr(out.rfind('\r') + 1);
  EXPECT_LE(last.size(), 99u);
  EXPECT_EQ(last.rfind("epoch 2 [", 0), 0u) << last;
  EXPECT_NE(last.find("] 509/1875 27% loss 0.4321 lr 0.0012 | 512 img/s ETA 1:25"),
            std::string::npos)
      << last;
  EXPECT_NE(last.find("=>"), std::string::npos) << last;

  bar.update(1875, 1875 * 32, {});  // completion is drawn even inside the throttle interval
  const std::string full = cap.text();
  EXPECT_NE(full.substr(full.rfind('\r')).find("1875/1875 100%"), std::string::npos);
  bar.finish("epoch 2: loss 0.41 acc 0.88");
  const std::string done_text = cap.text();
  EXPECT_EQ(done_text.substr(done_text.size() - 29), "\repoch 2: loss 0.41 acc 0.88\n");
}

TEST(ProgressBar, TerminalLineFitsColumns) {
  Capture cap;
  ProgressBar bar(std::string(60, 'L'), 10, "img", cap.options(1));
  bar.update(5, 50, {{"loss", "0.1234567890123"}, {"a_long_field_name", "a long value"}});
  const std::string out = cap.text();
  EXPECT_LE(out.size(), 100u);  // '\r' + at most 99 columns
}

TEST(ProgressBar, ShorterRedrawBlanksTheRest) {
  Capture cap;
  ProgressBar bar("x", 10, "img", cap.options(1));
  bar.update(1, 1, {{"note", "a long value here"}});
  cap.t += 1;
  bar.update(2, 2, {});
  const std::string out = cap.text();
  const size_t second = out.rfind('\r');
  EXPECT_EQ(out.size() - second, second) << "the second draw covers the first one's width";
}

TEST(ProgressBar, AutoModeIsPlainForFiles) {
  Capture cap;
  ProgressBar bar("x", 4, "img", cap.options(-1));
  EXPECT_FALSE(bar.terminal());
}

// A terminal gets a bar, except under mpirun, which gives every rank a pseudo-terminal even when
// the job's output goes to a file.
TEST(ProgressBar, AutoModeIsPlainUnderMpirunEvenOnATerminal) {
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY);
  ASSERT_GE(master, 0);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> tty{std::fopen(::ptsname(master), "w"),
                                                      &std::fclose};
  ASSERT_NE(tty, nullptr);
  ::setenv("TERM", "xterm", 1);
  ::unsetenv("OMPI_COMM_WORLD_SIZE");
  ::unsetenv("PMIX_RANK");
  ProgressOptions o;
  o.out = tty.get();
  EXPECT_TRUE(ProgressBar("x", 4, "img", o).terminal());
  ::setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
  EXPECT_FALSE(ProgressBar("x", 4, "img", o).terminal());
  ::unsetenv("OMPI_COMM_WORLD_SIZE");
  ::close(master);
}

TEST(ProgressBar, FinishPlainWithoutUpdates) {
  Capture cap;
  ProgressBar bar("x", 4, "img", cap.options(0));
  bar.finish("summary");
  EXPECT_EQ(cap.text(), "summary\n");
  Capture cap2;
  ProgressBar bar2("x", 4, "img", cap2.options(1));
  bar2.finish("summary");
  EXPECT_EQ(cap2.text(), "summary\n");
}

}  // namespace
}  // namespace cyclone
