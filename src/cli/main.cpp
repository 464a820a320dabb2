// \brief The `dfcl` binary: global flags, subcommand dispatch, and one place that turns errors into exit codes.
#include <CLI/CLI.hpp>  // for CLI::App

#include <iostream>  // for std::cerr

#include "cli/command.h"        // for registry
#include "core/error.h"         // for Error
#include "core/log.h"           // for log::set_level
#include "core/progress.h"      // for Progress::set_enabled
#include "dist/communicator.h"  // for dist::abort_job

int main(int argc, char** argv) {
  using namespace dfcl;
  CLI::App app{"dfcl: decision-focused causal learning for budget allocation.\n"
               "Run 'dfcl COMMAND --help' for a command's options; docs/cli.md lists every config key."};
  app.require_subcommand(1);
  bool quiet = false, verbose = false;
  app.add_flag("-q,--quiet", quiet, "no progress bars or info logs (warnings and errors still print)");
  app.add_flag("-v,--verbose", verbose, "debug logging");
  app.set_version_flag("--version", "dfcl 0.1.0");

  std::function<int()> run;
  for (auto& c : cli::registry()) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    auto body = c.setup(sub);
    sub->callback([&run, body] { run = body; });
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // Usage errors exit 2, like a config error (docs/cli.md: exit codes 0-3), not CLI11's own codes (106 and up).
    std::string names;
    for (const auto& c : cli::registry()) names += std::string(names.empty() ? "" : ", ") + c.name;
    const bool no_command = app.get_subcommands().empty();
    std::string first;
    for (int i = 1; i < argc; ++i)
      if (argv[i][0] != '-') {
        first = argv[i];
        break;
      }
    if (no_command && !first.empty())
      std::cerr << "error: dfcl: unknown command '" << first << "'; the commands are " << names
                << " (dfcl --help describes them)\n";
    else if (no_command)
      std::cerr << "error: dfcl: give a command: " << names << " (dfcl --help describes them)\n";
    else
      app.exit(e);
    return 2;
  }
  if (quiet) {
    // Warnings still print: they say a result may be wrong (training rows among the evaluated ones, a budget the
    // model overspends), which a script that silences the chatter must still see.
    log::set_level(log::Level::kWarn);
    Progress::set_enabled(false);
  } else if (verbose) {
    log::set_level(log::Level::kDebug);
  }
  const std::string cmd = app.get_subcommands().empty() ? "" : app.get_subcommands()[0]->get_name();
  try {
    return run ? run() : 0;
  } catch (const Error& e) {
    if (cli::dumping() && dynamic_cast<const ConfigError*>(&e))  // --dump-config: what was read before the error
      std::cout << "# the configuration read before the error below (given keys over the defaults read so far)\n"
                << cli::dumping()->dump_effective() << std::endl;
    log::error("dfcl {}: {}: {}", cmd, e.kind(), e.what());
    const int code = dynamic_cast<const ConfigError*>(&e) ? 2 : 1;
    dist::abort_job(code);  // one of several ranks: end them all (MPI_Abort), never leave the others waiting
    return code;
  } catch (const std::exception& e) {
    log::error("dfcl {}: unexpected error: {}", cmd, e.what());
    dist::abort_job(3);
    return 3;
  }
}
