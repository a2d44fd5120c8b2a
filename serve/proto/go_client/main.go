// Command betml-grpc-example calls betml's MLService as a Go service would: HealthCheck, then
// GetPrediction for one market, with the API key in the x-api-key metadata entry. It prints each
// selection's recommendation, or the error's code, message and details (bad fields, unknown
// resource, retry delay).
//
// How to run (serve/proto/go_client/build.sh builds it into var/go/bin):
//
//	var/go/bin/betml-grpc-example -addr localhost:9000 -api-key "$BETML_API_KEY"
//	var/go/bin/betml-grpc-example -event-key 'fd:E0:2024-08-16:Man United:Fulham' -market 1x2
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	betmlv1 "github.com/betml/betml/gen/go/betml/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func main() {
	addr := flag.String("addr", "localhost:9000", "host:port of betml's gRPC server")
	apiKey := flag.String("api-key", os.Getenv("BETML_API_KEY"), "API key, sent as x-api-key metadata")
	eventKey := flag.String("event-key", "", "predict a stored event by key instead of the built-in raw match")
	market := flag.String("market", "1x2", "market key to predict")
	bankroll := flag.Float64("bankroll", 1000, "bankroll in currency units, for stake amounts")
	timeout := flag.Duration("timeout", 10*time.Second, "deadline of each call")
	flag.Parse()

	conn, err := grpc.Dial(*addr, grpc.WithInsecure())
	if err != nil {
		fmt.Fprintf(os.Stderr, "dial %s: %v\n", *addr, err)
		os.Exit(1)
	}
	defer conn.Close()
	client := betmlv1.NewMLServiceClient(conn)

	ctx := context.Background()
	if *apiKey != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "x-api-key", *apiKey)
	}

	callCtx, cancel := context.WithTimeout(ctx, *timeout)
	health, err := client.HealthCheck(callCtx, &betmlv1.HealthCheckRequest{})
	cancel()
	if err != nil {
		os.Exit(report("HealthCheck", err))
	}
	fmt.Printf("health: %s (service %s, features v%s)\n",
		health.GetStatus(), health.GetServiceVersion(), health.GetFeatureSchemaVersion())
	for _, m := range health.GetModels() {
		fmt.Printf("  model %s@%s version %q: %s\n", m.GetName(), m.GetAlias(), m.GetVersion(), m.GetState())
	}

	request := &betmlv1.GetPredictionRequest{
		MarketKey: *market,
		Staking: &betmlv1.StakingOptions{
			Bankroll:        proto.Float64(*bankroll),
			KellyMultiplier: proto.Float64(0.25),
			MinEdge:         proto.Float64(0.02),
		},
	}
	if *eventKey != "" {
		request.Event = &betmlv1.GetPredictionRequest_EventKey{EventKey: *eventKey}
	} else {
		request.Event = &betmlv1.GetPredictionRequest_RawEvent{RawEvent: exampleMatch()}
	}
	callCtx, cancel = context.WithTimeout(ctx, *timeout)
	prediction, err := client.GetPrediction(callCtx, request)
	cancel()
	if err != nil {
		os.Exit(report("GetPrediction", err))
	}
	model := prediction.GetModel()
	fmt.Printf("prediction %s %s by %s version %s\n",
		prediction.GetEventKey(), prediction.GetMarketKey(), model.GetName(), model.GetVersion())
	for _, s := range prediction.GetSelections() {
		fmt.Printf("  %-6s p=%.3f fair=%.2f odds=%.2f@%s ev=%+.3f kelly=%.3f stake=%.2f min_odds=%.2f %s\n",
			s.GetSelection(), s.GetProbability(), s.GetFairOdds(), s.GetOdds(), s.GetBookmaker(),
			s.GetExpectedValue(), s.GetKellyFraction(), s.GetRecommendedStake(),
			s.GetMinimumAcceptableOdds(), s.GetTier())
	}
}

// exampleMatch is a raw football match with one 1X2 market priced by two bookmakers.
func exampleMatch() *betmlv1.Event {
	startsAt := time.Now().UTC().Add(24 * time.Hour).Truncate(time.Hour)
	quote := func(bookmaker string, price float64) *betmlv1.OddsQuote {
		return &betmlv1.OddsQuote{
			Bookmaker: bookmaker, Kind: betmlv1.OddsKind_ODDS_KIND_PRE_CLOSE, Price: price,
			CapturedAt: timestamppb.Now(),
		}
	}
	return &betmlv1.Event{
		Sport:       "football",
		Competition: "E0",
		StartsAt:    timestamppb.New(startsAt),
		Participants: &betmlv1.Event_Matchup{
			Matchup: &betmlv1.Matchup{Home: "Arsenal", Away: "Chelsea"},
		},
		Markets: []*betmlv1.Market{{
			MarketKey: "1x2",
			Type:      betmlv1.MarketType_MARKET_TYPE_MATCH_ODDS,
			Selections: []*betmlv1.Selection{
				{Name: "home", Participant: "Arsenal", Odds: []*betmlv1.OddsQuote{quote("pinnacle", 1.95), quote("bet365", 2.05)}},
				{Name: "draw", Odds: []*betmlv1.OddsQuote{quote("pinnacle", 3.60), quote("bet365", 3.50)}},
				{Name: "away", Participant: "Chelsea", Odds: []*betmlv1.OddsQuote{quote("pinnacle", 4.10), quote("bet365", 3.90)}},
			},
		}},
	}
}

// report prints a failed call's status code, message and error details; it returns the exit code.
func report(call string, err error) int {
	st := status.Convert(err)
	fmt.Fprintf(os.Stderr, "%s failed: %s: %s\n", call, st.Code(), st.Message())
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				fmt.Fprintf(os.Stderr, "  bad field %s: %s\n", v.GetField(), v.GetDescription())
			}
		case *errdetails.ResourceInfo:
			fmt.Fprintf(os.Stderr, "  unknown %s %q\n", d.GetResourceType(), d.GetResourceName())
		case *errdetails.RetryInfo:
			fmt.Fprintf(os.Stderr, "  retry in %s\n", d.GetRetryDelay().AsDuration())
		default:
			fmt.Fprintf(os.Stderr, "  detail %v\n", d)
		}
	}
	return 2
}
