#include "args.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace speedlm::cli {

const std::string& ParsedArgs::str(const std::string& name) const {
  static const std::string kEmpty;
  auto it = values_.find(name);
  return it == values_.end() ? kEmpty : it->second;
}
int64_t ParsedArgs::integer(const std::string& name) const { return std::strtoll(str(name).c_str(), nullptr, 10); }
double ParsedArgs::real(const std::string& name) const { return std::strtod(str(name).c_str(), nullptr); }

namespace {

Status check_value(const Command& cmd, const ArgSpec& spec, const std::string& value) {
  const char* begin = value.c_str();
  char* end = nullptr;
  errno = 0;
  if (spec.kind == ArgKind::Int) {
    std::strtoll(begin, &end, 10);
    if (value.empty() || *end != '\0' || errno == ERANGE)
      return Status::errorf(cmd.name, "--{} = '{}': expected an integer", spec.name, value);
  } else if (spec.kind == ArgKind::Float) {
    double d = std::strtod(begin, &end);
    if (value.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(d))
      return Status::errorf(cmd.name, "--{} = '{}': expected a number", spec.name, value);
  }
  return Status::ok();
}

}  // namespace

Result<ParsedArgs> parse_args(const Command& cmd, const std::vector<std::string>& argv) {
  ParsedArgs out;
  for (const ArgSpec& s : cmd.args)
    if (!s.default_value.empty()) out.values_[s.name] = s.default_value;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a.rfind("--", 0) != 0)
      return Status::errorf(cmd.name, "unexpected argument '{}' (flags start with --; see speedlm {} --help)", a, cmd.name);
    std::string name = a.substr(2), value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1), name = name.substr(0, eq), has_value = true;
    }
    const ArgSpec* spec = nullptr;
    for (const ArgSpec& s : cmd.args)
      if (s.name == name) spec = &s;
    if (!spec) return Status::errorf(cmd.name, "unknown flag --{} (see speedlm {} --help)", name, cmd.name);
    if (spec->kind == ArgKind::Flag) {
      if (has_value) return Status::errorf(cmd.name, "--{} takes no value", name);
      out.values_[name].assign(1, '1');  // not = "1": GCC 12 warns falsely (-Wrestrict, PR 105329)
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argv.size()) return Status::errorf(cmd.name, "--{} needs a value", name);
      value = argv[++i];
    }
    SPEEDLM_TRY(check_value(cmd, *spec, value));
    out.values_[name] = value;
  }
  for (const ArgSpec& s : cmd.args)
    if (s.required && !out.has(s.name)) return Status::errorf(cmd.name, "missing required flag --{}", s.name);
  return out;
}

std::string help_text(const Command& cmd) {
  std::string out = fmt::format("usage: speedlm {} [flags]\n\n{}\n\nflags:\n", cmd.name, cmd.summary);
  for (const ArgSpec& s : cmd.args) {
    std::string left = "--" + s.name;
    if (s.kind == ArgKind::Int) left += " N";
    if (s.kind == ArgKind::Float) left += " X";
    if (s.kind == ArgKind::String) left += " S";
    std::string right = s.help;
    if (s.required) right += " (required)";
    else if (!s.default_value.empty() && s.kind != ArgKind::Flag) right += " (default " + s.default_value + ")";
    out += fmt::format("  {:<24} {}\n", left, right);
  }
  return out;
}

}  // namespace speedlm::cli
