// One argument table per subcommand drives parsing, validation and --help.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "speedlm/status.h"

namespace speedlm::cli {

enum class ArgKind { String, Int, Float, Flag };

struct ArgSpec {
  std::string name;           // without the leading "--"
  ArgKind kind;
  std::string default_value;  // "" with required = false: unset
  std::string help;
  bool required = false;
};

class ParsedArgs {
 public:
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  const std::string& str(const std::string& name) const;
  int64_t integer(const std::string& name) const;
  double real(const std::string& name) const;
  bool flag(const std::string& name) const { return has(name) && values_.at(name) == "1"; }
  std::map<std::string, std::string> values_;
};

struct Command {
  std::string name;
  std::string summary;
  std::vector<ArgSpec> args;
  int (*run)(const ParsedArgs& args);
};

// Parses argv (after the subcommand) against the table; "--name value", "--name=value", "--flag".
Result<ParsedArgs> parse_args(const Command& cmd, const std::vector<std::string>& argv);
std::string help_text(const Command& cmd);

}  // namespace speedlm::cli
