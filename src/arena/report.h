// The arena's outputs: a Markdown table (arena.md) and CSVs for tables and plots:
//   arena.csv  one row per run: size, training speed, the metric, the headline speeds
//   speed.csv  one row per (run, context): prefill and decode tokens/s, state bytes
//   loss.csv   one row per training step: seconds, loss
#pragma once

#include "speedlm/speedlm.h"

namespace speedlm::arena {

// The Markdown report: the comparison table, the measurement notes, and (for grids over
// sequence length or d_model) a metric grid.
std::string markdown_report(const ArenaOptions& opt, const std::vector<ArenaRow>& rows, const std::string& notes);
Status write_reports(const std::string& out_dir, const std::vector<ArenaRow>& rows, const std::string& markdown);

}  // namespace speedlm::arena
