// Walks every key of `knowtune train`'s argument table: each one sets its field (read back through the table) or is
// listed as accepted without effect; closed sets refuse other names; --help lists every key with its default. Then
// the flags that used to be accepted and ignored, or did harm: metric_for_best_model, save_strategy,
// collective_timeout (flag, --key=value, YAML), predict_with_generate, train_on_prompt, the step-plan check before
// the model loads, and several adapters for score.
import Foundation
import KnowTuneTestSupport
import XCTest
@testable import KnowTuneData
import KnowTuneModel
@testable import KnowTuneTraining

final class TrainingArgumentTableTests: XCTestCase {
    typealias Parser = TrainingArgumentParser

    /// A value for `setter` that differs from the default in `defaults`.
    private func sampleValue(_ setter: Parser.Setter, defaults: TrainingArguments) -> String {
        switch setter {
        case .string, .optionalString: return "sample-value"
        case .int, .optionalInt: return "7"
        case .double, .optionalDouble: return "0.375"
        case .bool, .invertedBool: return setter.value(in: defaults) == "true" ? "false" : "true"
        case .optionalBool: return "true"
        case let .choice(names, _, _, get): return names.first { $0 != get(defaults) } ?? names[0]
        case .noEffect: return "1"
        }
    }

    func testEveryKeySetsItsFieldOrIsListedAsWithoutEffect() throws {
        let defaults = TrainingArguments()
        XCTAssertEqual(Set(Parser.keys.map(\.name)).count, Parser.keys.count, "no key is listed twice")
        var effects = 0, withoutEffect = 0
        for key in Parser.keys {
            let value = sampleValue(key.setter, defaults: defaults)
            let parsed = try Parser.parse(["--\(key.name)", value])
            XCTAssertEqual(parsed.givenKeys, [key.name])
            if case .noEffect = key.setter {
                XCTAssertEqual(parsed.arguments, defaults, "--\(key.name) changes nothing")
                XCTAssertEqual(parsed.ignoredFlags, [key.name], "--\(key.name) is reported as without effect")
                withoutEffect += 1
            } else {
                if case let .choice(names, _, _, _) = key.setter, names.count == 1 {
                    // A closed set of one (finetuning_type lora) can only restate its default; other names are refused.
                    XCTAssertEqual(names, [value])
                } else {
                    XCTAssertNotEqual(parsed.arguments, defaults, "--\(key.name) \(value) sets a field")
                }
                XCTAssertEqual(key.setter.value(in: parsed.arguments), value, "--\(key.name) reads back")
                XCTAssertTrue(parsed.ignoredFlags.isEmpty)
                effects += 1
            }
            // --key=value and a YAML file go through the same table.
            XCTAssertEqual(try Parser.parse(["--\(key.name)=\(value)"]).arguments, parsed.arguments, key.name)
            let file = NSTemporaryDirectory() + "knowtune-table-\(getpid()).yaml"
            try "\(key.name): \"\(value)\"\n".write(toFile: file, atomically: true, encoding: .utf8)
            XCTAssertEqual(try Parser.parse([file]).arguments, parsed.arguments, "\(key.name) from YAML")
        }
        XCTAssertEqual(withoutEffect, 10)
        XCTAssertGreaterThan(effects, 60)
    }

    func testClosedSetsRefuseOtherNamesByListingTheirs() {
        let refusals = [
            ("stage", "ppo", "sft, dpo"), ("lr_scheduler_type", "polynomial", "linear, cosine, constant, constant_with_warmup"),
            ("evaluation_strategy", "sometimes", "no, steps, epoch"), ("save_strategy", "sometimes", "no, steps, epoch"),
            ("dpo_loss", "kto_pair", "sigmoid, hinge, ipo"), ("base_dtype", "q5_k", "fp32, bf16, f16, q8_0, q4_0, q4_k"),
            ("metric_for_best_model", "eval_accuracy", "loss, eval_loss"), ("template", "vicuna", "alpaca"),
            ("finetuning_type", "full", "lora"),
        ]
        for (key, value, listed) in refusals {
            XCTAssertThrowsError(try Parser.parse(["--\(key)", value]), key) { error in
                XCTAssertTrue("\(error)".contains("--\(key) \(value) is not supported"), "\(error)")
                XCTAssertTrue("\(error)".contains(listed), "\(error)")
            }
        }
        XCTAssertNil(try Parser.parse(["--metric_for_best_model", "None"]).arguments.training.metricForBestModel)
    }

    func testHelpListsEveryKeyWithItsDefault() {
        let help = Parser.helpText
        for key in Parser.keys { XCTAssertTrue(help.contains("--\(key.name) "), key.name) }
        XCTAssertTrue(help.contains("default 1024"), "cutoff_len's default")
        XCTAssertTrue(help.contains("(no, steps, epoch); default steps"), "save_strategy's choices and default")
        XCTAssertTrue(help.contains("--bf16") && help.contains("accepted, no effect on CPU"))
    }

    func testBestModelMetricHasTheDirectionOfALoss() throws {
        for metric in ["loss", "eval_loss"] {
            var arguments = try Parser.parse(["--load_best_model_at_end", "--metric_for_best_model", metric]).arguments
            arguments.resolveDerivedDefaults()
            XCTAssertEqual(arguments.training.greaterIsBetter, false, metric)
        }
        var state = TrainerState(metricCount: 0)
        state.offerBest(metric: 2.0, step: 1, parameters: [1], greaterIsBetter: false)
        state.offerBest(metric: 3.0, step: 2, parameters: [2], greaterIsBetter: false)
        state.offerBest(metric: 1.5, step: 3, parameters: [3], greaterIsBetter: false)
        XCTAssertEqual(state.bestStep, 3)
        XCTAssertEqual(state.bestParameters, [3])
    }

    func testCollectiveTimeoutIsReadFromEveryForm() throws {
        XCTAssertEqual(try Parser.parse(["--collective_timeout=30"]).arguments.training.collectiveTimeout, 30)
        XCTAssertEqual(try Parser.parse(["--collective_timeout", "45"]).arguments.training.collectiveTimeout, 45)
        let file = NSTemporaryDirectory() + "knowtune-timeout-\(getpid()).yaml"
        try "collective_timeout: 12\n".write(toFile: file, atomically: true, encoding: .utf8)
        let parsed = try Parser.parse([file])
        XCTAssertEqual(parsed.arguments.training.collectiveTimeout, 12)
        XCTAssertTrue(parsed.givenKeys.contains("collective_timeout"))
        var negative = parsed.arguments
        negative.training.collectiveTimeout = -1
        XCTAssertThrowsError(try negative.validate()) { XCTAssertTrue("\($0)".contains("--collective_timeout")) }
    }

    private func valid(_ extra: [String]) throws -> TrainingArguments {
        var arguments = try Parser.parse(["--model_name_or_path", "m", "--dataset", "d", "--output_dir", "o"] + extra).arguments
        arguments.resolveDerivedDefaults()
        return arguments
    }

    func testPredictWithGenerateAndTrainOnPromptAsLLaMAFactory() throws {
        XCTAssertThrowsError(try valid(["--do_predict"]).validate()) {
            XCTAssertTrue("\($0)".contains("Please enable `predict_with_generate` to save model predictions."))
        }
        XCTAssertNoThrow(try valid(["--do_predict", "--predict_with_generate"]).validate())
        XCTAssertThrowsError(try valid(["--stage", "dpo", "--do_train", "--predict_with_generate"]).validate()) {
            XCTAssertTrue("\($0)".contains("`predict_with_generate` cannot be set as True except SFT."))
        }
        XCTAssertThrowsError(try valid(["--stage", "dpo", "--do_train", "--train_on_prompt"]).validate()) {
            XCTAssertTrue("\($0)".contains("--train_on_prompt applies to SFT only"))
        }
    }

    func testSaveAndEvalCadenceIsCheckedAsHFDoes() throws {
        let base = ["--do_train", "--load_best_model_at_end", "--val_size", "4"]
        XCTAssertNoThrow(try valid(base + ["--evaluation_strategy", "steps", "--eval_steps", "2", "--save_steps", "4"]).validate())
        XCTAssertNoThrow(try valid(base + ["--evaluation_strategy", "steps", "--eval_steps", "0.1", "--save_steps", "0.2"]).validate())
        for bad in [["--evaluation_strategy", "steps", "--eval_steps", "2", "--save_steps", "3"],
                    ["--evaluation_strategy", "steps", "--eval_steps", "0.1", "--save_steps", "5"],
                    ["--evaluation_strategy", "epoch", "--save_strategy", "steps"]] {
            XCTAssertThrowsError(try valid(base + bad).validate(), bad.joined(separator: " ")) {
                XCTAssertTrue("\($0)".contains("--load_best_model_at_end"), "\($0)")
            }
        }
    }

    /// The cadence error comes before the model is loaded: a run whose model does not exist reports the cadence.
    func testCadenceErrorComesBeforeTheModelLoads() throws {
        let output = TrainingFixtures.outputDirectory("cadence-before-load")
        var arguments = try TrainingFixtures.trainArguments(output: output, extra: ["--save_steps", "3"])
        let model = try XCTUnwrap(arguments.firstIndex(of: "--model_name_or_path"))
        arguments[model + 1] = output + "/no-such-model.gguf"
        let result = try KnowTuneRunner.run(arguments)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.standardError.contains("--save_steps (3) to be a multiple of --eval_steps (2)"), result.standardError)
        XCTAssertFalse(result.standardError.contains("no-such-model"), result.standardError)
    }

    func testTrainOnPromptPutsThePromptUnderTheLoss() throws {
        let example = EncodedExample(prompt: [5, 6, 7, 8], response: [9, 10, 2], index: 0)
        var arguments = TrainingArguments()
        arguments.training.tokenBudget = 64
        let configuration = TinyGGUFModel.configuration
        let layout = LoRALayout(model: configuration, lora: try arguments.finetuning.loraConfiguration())
        for (onPrompt, expectedTargets) in [(false, 3), (true, 6)] {
            arguments.data.trainOnPrompt = onPrompt
            let objective = SFTObjective(arguments: arguments, model: configuration, loraLayout: layout, train: [example], validation: [])
            var batch = PackedBatch()
            objective.pack(example, into: &batch, keyed: false)
            XCTAssertEqual(batch.targetCount, expectedTargets)
            XCTAssertEqual(objective.targetCount(example), expectedTargets)
            XCTAssertEqual(batch.targetRows.map(\.target), Array([5, 6, 7, 8, 9, 10, 2].suffix(expectedTargets)))
        }
    }
}
